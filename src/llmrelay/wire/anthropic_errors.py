"""Anthropic error bodies, both directions: upstream errors in, the server's errors out.

Pure. Upstream, :func:`decode_error` maps a non-2xx reply to the canonical tree (ARCHITECTURE §4):
the body's ``error.type`` decides, the status is the fallback for bodies that are not Anthropic's
JSON (Cloudflare answers 413 before the API sees the request). ``overloaded_error`` / 529 becomes
:class:`Overloaded` so the classifier retries and fails over; ``x-should-retry`` is the explicit
hint the official SDKs honour; ``Retry-After`` gives ``retry_after``. Credential errors get a fixed
message because upstream text may echo a masked key.

For the server, :func:`encode_error` renders any canonical error as Anthropic's
``{"type": "error", "error": {"type", "message"}}`` so Anthropic SDK clients raise their usual
exception classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from llmrelay.errors import (
    AuthenticationError,
    Conflict,
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RelayError,
    Timeout,
    UpstreamError,
    error_for_status,
)
from llmrelay.wire.retry_after import parse_retry_after


class ErrorObject(msgspec.Struct, frozen=True):
    type: str = ""
    message: str = ""


class _ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorObject = ErrorObject()


_ERROR = msgspec.json.Decoder(_ErrorBody)

_BY_TYPE: dict[str, type[RelayError]] = {
    "invalid_request_error": InvalidRequest,
    "authentication_error": AuthenticationError,
    "billing_error": PermissionDenied,
    "permission_error": PermissionDenied,
    "not_found_error": NotFound,
    "conflict_error": Conflict,
    "request_too_large": PayloadTooLarge,
    "rate_limit_error": RateLimited,
    "timeout_error": Timeout,
    "api_error": UpstreamError,
    "overloaded_error": Overloaded,
}

_MAX_MESSAGE = 500


def decode_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str = "anthropic",
    now: float,
) -> RelayError:
    """The canonical error for a non-2xx reply (or an ``error`` stream event, with ``status`` 200).

    The body's ``error.type`` decides the class when present; a body that is not Anthropic's JSON
    (Cloudflare's 413 page, a proxy's 502) falls back to the status. ``headers`` are lower-case.
    """
    error = _error_object(body)
    return error_from_type(
        error.type,
        error.message,
        status=status,
        provider=provider,
        retry_after=parse_retry_after(headers, now=now),
        should_retry=_should_retry(headers.get("x-should-retry")),
    )


def error_from_type(
    error_type: str,
    message: str,
    *,
    status: int,
    provider: str,
    retry_after: float | None = None,
    should_retry: bool | None = None,
) -> RelayError:
    """Map Anthropic's error ``type`` (and the HTTP status when the type is unknown) to the tree."""
    kind = _BY_TYPE.get(error_type) or _by_status(status)
    if kind is InvalidRequest and "prompt is too long" in message.lower():
        kind = ContextLengthExceeded
    if kind in (AuthenticationError, PermissionDenied):
        # These messages may echo (masked) credentials: never pass them on.
        label = error_type or "rejected"
        text = f"{provider} rejected the configured credentials ({label}, {status})"
    else:
        text = message[:_MAX_MESSAGE] or f"{provider} returned HTTP {status}"
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


def _should_retry(value: str | None) -> bool | None:
    """Anthropic's ``x-should-retry`` hint, as the official SDKs read it."""
    if value == "true":
        return True
    if value == "false":
        return False
    return None


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
