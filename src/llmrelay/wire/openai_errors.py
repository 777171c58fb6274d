"""OpenAI error bodies, both directions: upstream reply -> canonical error -> OpenAI envelope.

Pure. Upstream: every non-2xx reply and every ``{"error": ...}`` payload inside a 200 stream becomes
one class of the canonical tree, so retry, failover and the breaker never look at OpenAI shapes. The
body shapes differ across compatible servers (OpenAI and Groq ``{"error": {...}}`` with a string
``code``; vLLM and llama.cpp put the HTTP status in ``code``; Mistral and older vLLM answer
``{"object": "error", "message": ...}``; FastAPI-based ones ``{"detail": ...}``; some plain text),
so the fields are picked out leniently and the refinement reads ``code``, ``type`` and the message.

What the caller sees of the upstream's text follows :mod:`llmrelay.wire.upstream_text` (scrubbed of
the target's credentials and of anything shaped like one, capped; a body that is not JSON is only
summarised); classification reads the full text. A 401/403 is the upstream refusing the target's own
key: :class:`~llmrelay.errors.UpstreamAuthError`, with a fixed message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec

from llmrelay.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    NotFound,
    Overloaded,
    RateLimited,
    RelayError,
    error_for_status,
)
from llmrelay.wire.retry_after import parse_retry_after, parse_should_retry
from llmrelay.wire.upstream_text import NO_CREDENTIALS, Credentials, clean, rejected_credentials, summarise

# How OpenAI and the compatible servers word "the prompt does not fit" (lower-cased):
# OpenAI/Groq/DeepSeek "maximum context length", vLLM "...is too large: N. This model's maximum
# context length", llama.cpp "exceeds the available context size" / type exceed_context_size_error,
# Mistral "too large for model with N maximum context length", Together/TGI "`inputs` tokens +
# `max_new_tokens` must be <=", Ollama-style "context window".
_CONTEXT = re.compile(
    r"context_length_exceeded|maximum context length|context size|context_size|context window"
    r"|too large for model|reduce the length of the messages|prompt is too long"
    r"|tokens \+ `max_new_tokens`"
)
_FILTERED = re.compile(r"content_filter|content_policy|content policy|content management policy")

_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "api_error": 500,
}


class ErrorFields(NamedTuple):
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    status: int | None = None  # vLLM and llama.cpp put the HTTP status in ``code``


def decode_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str,
    now: float,
    credentials: Credentials = NO_CREDENTIALS,
) -> RelayError:
    """The canonical error for a non-2xx reply; ``now`` is Unix time.

    Honours ``retry-after-ms`` / ``Retry-After`` and ``x-should-retry`` (OpenAI's explicit hint,
    which overrides the classifier's retry column). ``credentials`` are the target's, scrubbed
    from anything the upstream says.
    """
    try:
        fields, shown = _fields(msgspec.json.decode(body)), None
    except msgspec.DecodeError:
        # Not JSON: classify on the text, but never show it (proxy pages, dumps, echoed headers).
        fields = ErrorFields(message=body.decode("utf-8", errors="replace"))
        shown = summarise(status, headers, body)
    return _error(
        status,
        fields,
        provider=provider,
        retry_after=parse_retry_after(headers, now=now),
        should_retry=parse_should_retry(headers),
        credentials=credentials,
        shown=shown,
    )


def decode_stream_error(
    payload: Any, *, provider: str, credentials: Credentials = NO_CREDENTIALS
) -> RelayError:
    """An ``{"error": ...}`` event inside a 200 stream; there is no HTTP status, so infer one."""
    fields = _fields(payload)
    status = fields.status or _STATUS_BY_TYPE.get(fields.type or "")
    if status is None:
        status = 429 if fields.code == "rate_limit_exceeded" else 500
        if _CONTEXT.search(_haystack(fields)):
            status = 400
    return _error(
        status, fields, provider=provider, retry_after=None, should_retry=None, credentials=credentials
    )


def _fields(data: Any) -> ErrorFields:
    if isinstance(data, dict) and "error" in data:
        data = data["error"]
    if isinstance(data, str):
        return ErrorFields(message=data)
    if not isinstance(data, dict):
        return ErrorFields(message="")
    message = data.get("message") or data.get("detail") or ""
    code = data.get("code")
    return ErrorFields(
        message=message if isinstance(message, str) else msgspec.json.encode(message).decode(),
        type=_text(data.get("type")),
        code=code if isinstance(code, str) else None,
        param=_text(data.get("param")),
        status=code if isinstance(code, int) and 400 <= code <= 599 else None,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _haystack(fields: ErrorFields) -> str:
    return f"{fields.code} {fields.type} {fields.message}".lower()


def _error(
    status: int,
    fields: ErrorFields,
    *,
    provider: str,
    retry_after: float | None,
    should_retry: bool | None,
    credentials: Credentials,
    shown: str | None = None,
) -> RelayError:
    if status in (401, 403):
        return rejected_credentials(provider, status)
    cls = error_for_status(status)
    haystack = _haystack(fields)
    if fields.code == "model_not_found" and status in (400, 404):
        cls = NotFound
    elif 400 <= status < 500 and status not in (401, 403, 404, 429) and _CONTEXT.search(haystack):
        cls = ContextLengthExceeded
    elif 400 <= status < 500 and status not in (401, 403, 404, 429) and _FILTERED.search(haystack):
        cls = ContentFiltered
    elif status == 503 and "overloaded" in haystack:
        cls = Overloaded
    if cls is RateLimited and fields.code == "insufficient_quota" and should_retry is None:
        should_retry = False  # billing, not load: waiting will not help (failover still may)
    detail = shown or clean(fields.message, credentials) or f"HTTP {status}"
    return cls(
        f"{provider}: {detail}",
        status=status,
        provider=provider,
        retry_after=retry_after,
        should_retry=should_retry,
        param=clean(fields.param, credentials) if fields.param is not None else None,
    )


def error_type(err: RelayError) -> str:
    """OpenAI's ``type`` for a canonical error, chosen by status as OpenAI does."""
    if err.status in (400, 409, 413, 422):
        return "invalid_request_error"
    if err.status == 401:
        return "authentication_error"
    if err.status == 403:
        return "permission_error"
    if err.status == 404:
        return "not_found_error"
    if err.status == 429:
        return "rate_limit_error"
    if err.status >= 500:
        return "server_error"
    return "api_error"


def encode_error(err: RelayError) -> dict[str, Any]:
    """OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}`` (``ErrorResponse``)."""
    return {
        "error": {
            "message": err.message,
            "type": error_type(err),
            "param": err.param,
            "code": err.code,
        }
    }
