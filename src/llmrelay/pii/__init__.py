"""PII: detectors, masking for logs and outputs, reversible placeholders for prompts.

- :mod:`~llmrelay.pii.detectors`: what counts as PII (patterns confirmed by checksums).
- :mod:`~llmrelay.pii.redactor`: masking (``[EMAIL]``) and one request's placeholders
  (``<EMAIL_1>``, restored in the answer).
- :mod:`~llmrelay.pii.stream_text`: the same across a stream, where a placeholder or a value may
  be split between chunks.
- :mod:`~llmrelay.pii.presidio`: Microsoft Presidio as an extra detector, when it is installed.
- :mod:`~llmrelay.pii.log_filter`: the server's log lines, always masked.

The per-alias policy that applies them to requests and answers is
:mod:`llmrelay.policies.redact_pii` (docs/architecture.md §4).
"""
