"""Provider token-count replies: Anthropic's ``{"input_tokens": N}``, Gemini's ``{"totalTokens": N}``.

Pure; shared by the providers that have a counting endpoint (:mod:`llmrelay.providers.anthropic`,
:mod:`llmrelay.providers.gemini`). A reply without a non-negative integer at ``field`` is the
upstream's fault (:class:`UpstreamError`), never the caller's.
"""

from __future__ import annotations

import msgspec

from llmrelay.errors import UpstreamError


def decode_token_count(body: bytes, field: str, *, provider: str) -> int:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        raise UpstreamError(f"{provider} sent an unreadable token count", provider=provider) from err
    count = value.get(field) if isinstance(value, dict) else None
    if type(count) is not int or count < 0:
        raise UpstreamError(f"{provider} sent a token count without `{field}`", provider=provider)
    return count
