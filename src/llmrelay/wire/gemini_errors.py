"""Gemini error replies -> the canonical error tree (pure; part of :mod:`llmrelay.wire.gemini`).

Google APIs answer failures with ``{"error": {"code", "message", "status", "details"}}`` where
``status`` is a ``google.rpc.Code`` name and ``details`` holds typed ``google.rpc`` messages. The
rpc status is more precise than the HTTP one, so it decides first:

- ``RESOURCE_EXHAUSTED`` (429) -> :class:`RateLimited`; the wait comes from the ``RetryInfo`` detail
  (``"retryDelay": "30s"``) because Gemini rarely sends ``Retry-After``, else from the header.
- An invalid API key is a 400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` reason ``API_KEY_INVALID``:
  like ``UNAUTHENTICATED``/``PERMISSION_DENIED`` (401/403) it is the upstream refusing the target's
  own key, an :class:`UpstreamAuthError` (fail over, trip the breaker), not a bad request.
- ``UNAVAILABLE`` (503) -> :class:`UpstreamError` (:class:`Overloaded` when the model says so),
  ``INTERNAL`` (500) -> :class:`UpstreamError`, ``DEADLINE_EXCEEDED`` (504) -> :class:`Timeout`.
- ``INVALID_ARGUMENT`` whose message is about the token limit -> :class:`ContextLengthExceeded`, so
  the router can fail over to a larger-context target.

Credential failures get fixed messages: Google echoes key fragments in some of them. Any other
upstream text follows :mod:`llmrelay.wire.upstream_text` (scrubbed, capped; a body that is not JSON
only summarised), and ``x-should-retry`` is read as for every provider. The same mapping serves
error events inside a 200 stream (:func:`error_from_status`, no headers there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from llmrelay.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    RelayError,
    Timeout,
    UpstreamError,
    error_for_status,
)
from llmrelay.wire.retry_after import parse_retry_after, parse_should_retry
from llmrelay.wire.upstream_text import NO_CREDENTIALS, Credentials, clean, rejected_credentials, summarise

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
    credentials: Credentials = NO_CREDENTIALS,
) -> RelayError:
    """The canonical error for a non-2xx reply; ``now`` is Unix time.

    Bodies that are not Google's JSON (a proxy's HTML page) still map by HTTP status and are only
    summarised. ``credentials`` are the target's, scrubbed from anything the upstream says.
    """
    shown = None
    try:
        decoded = _envelope.decode(body)
    except msgspec.DecodeError:
        decoded, shown = _Envelope(), summarise(status, headers, body)
    # Some Google front ends wrap the error in a one-element list.
    envelope = (decoded[0] if decoded else _Envelope()) if isinstance(decoded, list) else decoded
    return error_from_status(
        status,
        envelope.error,
        headers=headers,
        provider=provider,
        now=now,
        credentials=credentials,
        shown=shown,
    )


def error_from_status(
    status: int,
    error: ErrorStatus | None,
    *,
    headers: Mapping[str, str],
    provider: str,
    now: float,
    credentials: Credentials = NO_CREDENTIALS,
    shown: str | None = None,
) -> RelayError:
    """Map an HTTP status plus the decoded ``error`` object (if any) to the canonical class.

    ``shown``, when given, replaces the upstream's message in what the caller sees (a summary of a
    body that was not JSON).
    """
    rpc = error.status if error else ""
    details = error.details if error else []
    raw = error.message if error else ""
    if _reason(details) == "API_KEY_INVALID":
        return rejected_credentials(provider, status, reason="API_KEY_INVALID")
    if rpc in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return rejected_credentials(provider, status, reason=rpc)
    if status in (401, 403):
        return rejected_credentials(provider, status)
    if shown is not None:
        text = f"{provider}: {shown}"
    elif raw:
        text = f"{provider}: {clean(raw, credentials)}"
    else:
        text = f"{provider} returned HTTP {status}"
    kind, canonical_status = _kind(status, rpc, raw)
    retry_after = None
    if kind is RateLimited:
        retry_after = _retry_delay(details)
        if retry_after is None:
            retry_after = parse_retry_after(headers, now=now)
    return kind(
        text,
        status=canonical_status,
        provider=provider,
        retry_after=retry_after,
        should_retry=parse_should_retry(headers),
    )


def _kind(status: int, rpc: str, message: str) -> tuple[type[RelayError], int | None]:
    """The canonical class (and a status overriding its default) for the rpc status, else HTTP's."""
    if rpc == "RESOURCE_EXHAUSTED" or status == 429:
        return RateLimited, None
    if rpc == "DEADLINE_EXCEEDED" or status == 504:
        return Timeout, None
    if rpc == "UNAVAILABLE" or status == 503:
        return (Overloaded if "overloaded" in message.lower() else UpstreamError), 503
    if rpc == "INTERNAL" or status >= 500:
        return UpstreamError, status if status >= 500 else 500
    if rpc == "NOT_FOUND" or status == 404:
        return NotFound, None
    if rpc in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE") or status == 400:
        return (ContextLengthExceeded if _TOKEN_LIMIT.search(message) else InvalidRequest), None
    return error_for_status(status), status


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
