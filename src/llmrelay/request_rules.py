"""Rules a canonical chat request must satisfy on its own, whatever face built it and wherever it goes.

Pure. Both inbound codecs (:mod:`llmrelay.wire.openai_inbound`, :mod:`llmrelay.wire.anthropic_inbound`)
and the SDK facade (:func:`llmrelay.chat_options.chat_request`) pass the request they built through
:func:`validate`, so a caller gets the same 400 naming the same field from every face, before any
policy runs or any quota is spent. Rules that depend on the target (which parameters it can
honour) live in :mod:`llmrelay.wire.foreign_params` instead, because a fallback may change it.

- ``tool_choice`` that forces a tool (``required``, or a named tool) needs ``tools``, and a named
  tool must be one of them. Providers disagree on what they do otherwise (OpenAI rejects it,
  others call nothing or the first tool), and the mock would answer with a tool that was never
  offered; one clear error is better than any of those. The error names the tools only when
  their names are shaped like function names (OpenAI's ``^[A-Za-z0-9_-]{1,64}$``, dots allowed):
  anything else may be text put in the wrong field, and errors never echo that.
- ``n`` (OpenAI's number of choices) is rejected above 1, on every alias: the canonical response
  holds one message, so llmrelay answers with one choice; passing ``n`` to an OpenAI upstream would
  bill ``n`` answers and return one. ``n: 1`` (the default) is accepted. The caller sends ``n``
  separate requests instead, which also spreads them over the alias's targets.
"""

from __future__ import annotations

import re

from llmrelay.errors import InvalidRequest
from llmrelay.types import ChatRequest

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def validate(request: ChatRequest) -> ChatRequest:
    """``request`` unchanged, or :class:`InvalidRequest` whose ``param`` names the offending field."""
    _check_tool_choice(request)
    _check_n(request)
    return request


def _check_tool_choice(request: ChatRequest) -> None:
    choice = request.tool_choice
    if choice is None or choice.mode in ("auto", "none"):
        return
    names = [tool.name for tool in request.tools]
    forced = f"tool {_shown(choice.name)}" if choice.mode == "tool" else "a tool call"
    if not names:
        raise InvalidRequest(
            f"`tool_choice` forces {forced}, but the request has no tools", param="tool_choice"
        )
    if choice.mode == "tool" and choice.name not in names:
        raise InvalidRequest(
            f"`tool_choice` names tool {_shown(choice.name)}, which is not in `tools`"
            f" ({', '.join(n if _IDENTIFIER.match(n) else '…' for n in names)})",
            param="tool_choice",
        )


def _shown(name: str | None) -> str:
    return repr(name) if name is not None and _IDENTIFIER.match(name) else "(not shown: not a function name)"


def _check_n(request: ChatRequest) -> None:
    n = request.extension("openai").get("n")
    if n is None or (type(n) is int and n == 1):  # type(), not isinstance(): True is not a count
        return
    if type(n) is not int or n < 1:
        raise InvalidRequest("`n` must be a positive integer", param="n")
    raise InvalidRequest(f"`n` is {n}, but llmrelay returns one choice; send n separate requests", param="n")
