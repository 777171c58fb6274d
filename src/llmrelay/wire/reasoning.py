"""How much to think, across providers: canonical :class:`~llmrelay.types.Reasoning` <-> each knob.

Pure tables and functions used by the codecs. OpenAI asks for an *effort* (``reasoning_effort``),
Anthropic and Gemini for a token *budget* (``thinking.budget_tokens``,
``thinkingConfig.thinkingBudget``), so one side is always translated:

- effort -> budget: ``minimal`` and ``low`` 1024 (Anthropic's smallest budget), ``medium`` 2048,
  ``high`` 4096: the budgets the best-known Python gateway uses, so callers moving over get the same
  behaviour; ``none`` turns thinking off (Gemini budget 0; Anthropic: no ``thinking`` at all).
- budget -> effort (an Anthropic client's budget sent to OpenAI): the smallest effort whose budget
  covers it, ``high`` above 2048.

Anthropic counts the budget inside ``max_tokens`` and wants ``budget < max_tokens``
(:func:`anthropic_thinking` settles that); Gemini is asked to return its thought summaries
(``includeThoughts``), so reasoning comes back as :class:`~llmrelay.types.ReasoningPart` values
with their signatures.
"""

from __future__ import annotations

from typing import Any

from llmrelay.errors import InvalidRequest
from llmrelay.types import Reasoning, ReasoningEffort

ANTHROPIC_MIN_BUDGET = 1024
EFFORT_BUDGETS: dict[ReasoningEffort, int] = {
    "none": 0,
    "minimal": 1024,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
}
EFFORTS: tuple[ReasoningEffort, ...] = ("none", "minimal", "low", "medium", "high")


def budget(reasoning: Reasoning) -> int:
    """The token budget ``reasoning`` asks for (0: no thinking)."""
    if reasoning.budget_tokens is not None:
        return reasoning.budget_tokens
    return EFFORT_BUDGETS[reasoning.effort or "medium"]


def effort(reasoning: Reasoning) -> ReasoningEffort:
    """OpenAI's ``reasoning_effort`` for ``reasoning``."""
    if reasoning.budget_tokens is None:
        return reasoning.effort or "medium"
    if reasoning.budget_tokens <= 0:
        return "none"
    for name in ("low", "medium"):
        if reasoning.budget_tokens <= EFFORT_BUDGETS[name]:
            return name
    return "high"


def anthropic_thinking(
    reasoning: Reasoning, *, max_tokens: int | None, default_max_tokens: int
) -> tuple[dict[str, Any] | None, int]:
    """Anthropic's ``thinking`` object (``None``: leave thinking off) and the ``max_tokens`` to send.

    Without a caller's ``max_tokens`` the budget is added to the default answer room; with one, the
    budget shrinks to fit under it, and a cap too small for Anthropic's minimum budget is a 400.
    """
    tokens = budget(reasoning)
    if tokens <= 0:
        return None, max_tokens if max_tokens is not None else default_max_tokens
    tokens = max(tokens, ANTHROPIC_MIN_BUDGET)
    if max_tokens is None:
        return {"type": "enabled", "budget_tokens": tokens}, default_max_tokens + tokens
    if max_tokens <= ANTHROPIC_MIN_BUDGET:
        raise InvalidRequest(
            f"`max_tokens` is {max_tokens}: thinking on Anthropic needs more than"
            f" {ANTHROPIC_MIN_BUDGET} (its smallest thinking budget)",
            param="max_tokens",
        )
    return {"type": "enabled", "budget_tokens": min(tokens, max_tokens - 1)}, max_tokens


def gemini_thinking_config(reasoning: Reasoning) -> dict[str, Any]:
    """Gemini's ``thinkingConfig``: the budget, and thought summaries back when thinking is on."""
    tokens = budget(reasoning)
    if tokens <= 0:
        return {"thinkingBudget": 0}
    return {"thinkingBudget": tokens, "includeThoughts": True}


def decode_effort(value: Any) -> Reasoning | None:
    """An OpenAI client's ``reasoning_effort`` as canonical reasoning (``None``: not one we know)."""
    return Reasoning(effort=value) if value in EFFORTS else None


def decode_anthropic_thinking(value: Any) -> Reasoning | None:
    """An Anthropic client's ``thinking`` as canonical reasoning, for the plain enabled shape only.

    Other shapes (``disabled``, ``adaptive``, extra keys) stay Anthropic's own parameter.
    """
    if not isinstance(value, dict) or set(value) != {"type", "budget_tokens"}:
        return None
    tokens = value["budget_tokens"]
    if value["type"] != "enabled" or type(tokens) is not int or tokens < 1:
        return None
    return Reasoning(budget_tokens=tokens)
