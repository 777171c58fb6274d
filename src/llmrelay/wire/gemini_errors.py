"""Gemini error replies -> the canonical error tree (pure; part of :mod:`llmrelay.wire.gemini`).

Google APIs answer failures with ``{"error": {"code", "message", "status", "details"}}`` where
``status`` is a ``google.rpc.Code`` name and ``details`` holds typed ``google.rpc`` messages. The
rpc status is more precise than the HTTP one, so it decides first:

- ``RESOURCE_EXHAUSTED`` (429) -> :class:`RateLimited`; the wait comes from the ``RetryInfo`` detail
  (``"retryDelay": "30s"``) because Gemini rarely sends ``Retry-After``, else from the header.
- An invalid API key is a 400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` reason ``API_KEY_INVALID``:
  it is an :class:`AuthenticationError`, not a bad request, so nobody "fixes" their prompt over it.
- ``UNAVAILABLE`` (503) -> :class:`UpstreamError` (:class:`Overloaded` when the model says so),
  ``INTERNAL`` (500) -> :class:`UpstreamError`, ``DEADLINE_EXCEEDED`` (504) -> :class:`Timeout`.
- ``INVALID_ARGUMENT`` whose message is about the token limit -> :class:`ContextLengthExceeded`, so
  the router can fail over to a larger-context target.

Credential failures get fixed messages: Google echoes key fragments in some of them. The same
mapping serves error events inside a 200 stream (:func:`error_from_status`, no headers there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from llmrelay.errors import (
    AuthenticationError,
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RelayError,
    Timeout,
    UpstreamError,
    error_for_status,
)
from llmrelay.wire.retry_after import parse_retry_after

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_MAX_SANE_DELAY = 86_400.0

# "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
_TOKEN_LIMIT = re.compile(
    r"token count.*exceeds|exceeds the maximum number of tokens|too many tokens|context length",
    re.IGNORECASE,
)


class ErrorStatus(msgspec.Struct, kw_only=True):
    """The ``error`` object of a Google API reply (a ``google.rpc.Status`` in JSON)."""

    code: int = 0
    message: str = ""
    status: str = ""
    details: list[dict[str, Any]] = msgspec.field(default_factory=list)


class _Envelope(msgspec.Struct):
    error: ErrorStatus | None = None


_envelope = msgspec.json.Decoder(_Envelope | list[_Envelope])


def decode_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    provider: str = "gemini",
    now: float,
) -> RelayError:
    """The canonical error for a non-2xx reply; ``headers`` keys are lower-case, ``now`` Unix time.

    Bodies that are not Google's JSON (a proxy's HTML page) still map by HTTP status.
    """
    try:
        decoded = _envelope.decode(body)
    except msgspec.DecodeError:
        decoded = _Envelope()
    # Some Google front ends wrap the error in a one-element list.
    envelope = (decoded[0] if decoded else _Envelope()) if isinstance(decoded, list) else decoded
    return error_from_status(status, envelope.error, headers=headers, provider=provider, now=now)


def error_from_status(
    status: int,
    error: ErrorStatus | None,
    *,
    headers: Mapping[str, str],
    provider: str,
    now: float,
) -> RelayError:
    """Map an HTTP status plus the decoded ``error`` object (if any) to the canonical class."""
    rpc = error.status if error else ""
    details = error.details if error else []
    text = f"{provider}: {error.message}" if error and error.message else f"{provider} returned HTTP {status}"
    if _reason(details) == "API_KEY_INVALID" or rpc == "UNAUTHENTICATED" or status == 401:
        return AuthenticationError(
            f"{provider} rejected the configured credentials ({status})", provider=provider
        )
    if rpc == "PERMISSION_DENIED" or status == 403:
        return PermissionDenied(
            f"{provider} denied access with the configured credentials ({status})",
            provider=provider,
        )
    if rpc == "RESOURCE_EXHAUSTED" or status == 429:
        delay = _retry_delay(details)
        if delay is None:
            delay = parse_retry_after(headers, now=now)
        return RateLimited(text, retry_after=delay, provider=provider)
    if rpc == "DEADLINE_EXCEEDED" or status == 504:
        return Timeout(text, provider=provider)
    if rpc == "UNAVAILABLE" or status == 503:
        unavailable = Overloaded if "overloaded" in text.lower() else UpstreamError
        return unavailable(text, status=503, provider=provider)
    if rpc == "INTERNAL" or status >= 500:
        return UpstreamError(text, status=status if status >= 500 else 500, provider=provider)
    if rpc == "NOT_FOUND" or status == 404:
        return NotFound(text, provider=provider)
    if rpc in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE") or status == 400:
        kind = ContextLengthExceeded if _TOKEN_LIMIT.search(text) else InvalidRequest
        return kind(text, provider=provider)
    return error_for_status(status)(text, status=status, provider=provider)


def _reason(details: list[dict[str, Any]]) -> str | None:
    for detail in details:
        if detail.get("@type") == _ERROR_INFO:
            reason = detail.get("reason")
            return reason if isinstance(reason, str) else None
    return None


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a ``RetryInfo`` detail (a protobuf Duration in JSON: ``"30s"``, ``"1.5s"``)."""
    for detail in details:
        if detail.get("@type") != _RETRY_INFO:
            continue
        value = detail.get("retryDelay")
        if not isinstance(value, str) or not value.endswith("s"):
            return None
        try:
            seconds = float(value[:-1])
        except ValueError:
            return None
        return seconds if 0 <= seconds <= _MAX_SANE_DELAY else None
    return None
