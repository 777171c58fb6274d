"""Anthropic error bodies, both directions: upstream errors in, the server's errors out.

Pure. Upstream, :func:`decode_error` maps a non-2xx reply to the canonical tree (see
:mod:`llmrelay.classify`): the body's ``error.type`` decides, the status is the fallback for bodies
that are not Anthropic's JSON (Cloudflare answers 413 before the API sees the request).
``overloaded_error`` / 529 becomes :class:`Overloaded` so the classifier retries and fails over;
``x-should-retry`` is the explicit hint the official SDKs honour; ``Retry-After`` gives
``retry_after``. ``authentication_error``, ``permission_error`` and ``billing_error`` (or a bare
401/403) are the upstream refusing the target's own key or account: :class:`UpstreamAuthError` with
a fixed message. Any other upstream text follows :mod:`llmrelay.wire.upstream_text` (scrubbed,
capped; a body that is not JSON only summarised).

For the server, :func:`encode_error` renders any canonical error as Anthropic's
``{"type": "error", "error": {"type", "message"}}`` so Anthropic SDK clients raise their usual
exception classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from llmrelay.errors import (
    Conflict,
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RelayError,
    Timeout,
    UpstreamAuthError,
    UpstreamError,
    error_for_status,
)
from llmrelay.wire.retry_after import parse_retry_after, parse_should_retry
from llmrelay.wire.upstream_text import NO_CREDENTIALS, Credentials, clean, rejected_credentials, summarise


class ErrorObject(msgspec.Struct, frozen=True):
    type: str = ""
    message: str = ""


class _ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorObject = ErrorObject()


_ERROR = msgspec.json.Decoder(_ErrorBody)

_BY_TYPE: dict[str, type[RelayError]] = {
    "invalid_request_error": InvalidRequest,
    # The upstream refuses the target's key or account (an unpaid one is as unusable as a bad key).
    "authentication_error": UpstreamAuthError,
    "billing_error": UpstreamAuthError,
    "permission_error": UpstreamAuthError,
    "not_found_error": NotFound,
    "conflict_error": Conflict,
    "request_too_large": PayloadTooLarge,
    "rate_limit_error": RateLimited,
    "timeout_error": Timeout,
    "api_error": UpstreamError,
    "overloaded_error": Overloaded,
}


def decode_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str = "anthropic",
    now: float,
    credentials: Credentials = NO_CREDENTIALS,
) -> RelayError:
    """The canonical error for a non-2xx reply; ``credentials`` are the target's, to scrub.

    The body's ``error.type`` decides the class when present; a body that is not Anthropic's JSON
    (Cloudflare's 413 page, a proxy's 502) falls back to the status and is only summarised.
    """
    error = _error_object(body)
    return error_from_type(
        error.type,
        error.message,
        status=status,
        provider=provider,
        retry_after=parse_retry_after(headers, now=now),
        should_retry=parse_should_retry(headers),
        credentials=credentials,
        shown=None if error.type or error.message else summarise(status, headers, body),
    )


def error_from_type(
    error_type: str,
    message: str,
    *,
    status: int,
    provider: str,
    retry_after: float | None = None,
    should_retry: bool | None = None,
    credentials: Credentials = NO_CREDENTIALS,
    shown: str | None = None,
) -> RelayError:
    """Map Anthropic's error ``type`` (and the HTTP status when the type is unknown) to the tree.

    ``status`` is 200 for an ``error`` event inside a stream. ``shown``, when given, replaces the
    upstream's message in what the caller sees (a summary of a body that was not JSON).
    """
    kind = _BY_TYPE.get(error_type) or _by_status(status)
    if kind is UpstreamAuthError or status in (401, 403):  # whatever type a proxy put in the body
        return rejected_credentials(provider, status, reason=error_type or None)
    if kind is InvalidRequest and "prompt is too long" in message.lower():
        kind = ContextLengthExceeded
    if shown is not None:
        text = f"{provider}: {shown}"
    else:
        text = clean(message, credentials) or f"{provider} returned HTTP {status}"
    upstream_status = status if issubclass(kind, UpstreamError) and status >= 500 else None
    return kind(
        text,
        status=upstream_status,
        provider=provider,
        retry_after=retry_after,
        should_retry=should_retry,
    )


def _by_status(status: int) -> type[RelayError]:
    if status == 529:
        return Overloaded
    if status < 400:  # an error event of an unknown type inside a 200 stream
        return UpstreamError
    return error_for_status(status)


def _error_object(body: bytes) -> ErrorObject:
    try:
        return _ERROR.decode(body).error
    except msgspec.DecodeError:
        return ErrorObject()


_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(err: RelayError) -> str:
    """Anthropic's error ``type`` for ``err``.

    Chosen by status rather than class so :class:`AllTargetsFailed` (which carries the status of
    its last failure) maps like that failure. 503 (an open circuit) reads as ``overloaded_error``:
    the caller's remedy is the same, wait and retry. Other 4xx are ``invalid_request_error`` as
    Anthropic documents; other 5xx ``api_error``.
    """
    if err.status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[err.status]
    return "invalid_request_error" if 400 <= err.status < 500 else "api_error"


def encode_error(err: RelayError, *, request_id: str | None = None) -> dict[str, Any]:
    """The error body an Anthropic client expects (also the data of a stream ``error`` event)."""
    error = {"type": error_type(err), "message": err.message}
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id is not None:
        body["request_id"] = request_id
    return body
