"""llmrelay: one async facade and an OpenAI/Anthropic-compatible gateway over many LLM providers."""
