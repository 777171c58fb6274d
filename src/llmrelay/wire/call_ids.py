"""Gemini's function-call signatures carried inside tool-call ids, through the server's faces.

Gemini 3 refuses a tool-use history whose function calls lack the ``thoughtSignature`` it put on
them. SDK callers send the canonical message back, ``meta`` and all; but an OpenAI or Anthropic
client talking to the server has nowhere to keep provider data except the call's id, which every
client returns verbatim with the tool's result. So the server's faces append the signature to the
id they hand out (:func:`with_signature`) and take it off again when the id comes back
(:func:`split`), before any provider sees it. The separator is the one the best-known Python
gateway uses, so a conversation can move between the two.
"""

from __future__ import annotations

from llmrelay.types import PartMeta

SEPARATOR = "__thought__"
_KEY = "thoughtSignature"


def with_signature(call_id: str, meta: PartMeta | None) -> str:
    """``call_id``, with the call's Gemini signature appended when it has one."""
    signature = meta.get("gemini", {}).get(_KEY) if meta else None
    return f"{call_id}{SEPARATOR}{signature}" if isinstance(signature, str) else call_id


def split(call_id: str) -> tuple[str, PartMeta | None]:
    """The id the provider gave, and the ``meta`` holding the signature that rode on it."""
    base, separator, signature = call_id.partition(SEPARATOR)
    if not separator:
        return call_id, None
    return base, {"gemini": {_KEY: signature}}
