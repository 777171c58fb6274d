"""What an upstream's headers say about retrying: how long to wait, and whether to retry at all.

Pure, and the one reading of these headers for every provider codec. Understands ``retry-after-ms``
(OpenAI, milliseconds), ``Retry-After`` in delta-seconds or as an HTTP-date (RFC 9110 §10.2.3), and
``x-should-retry`` (the explicit hint OpenAI and Anthropic send and their official SDKs honour).
Header names match case-insensitively and values are read with surrounding space and any letter
case; garbage, negative and absurd waits (over a day) are ignored, as the official SDKs do. The
retry policy applies its own cap on top.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

_MAX_SANE = 86_400.0


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait, or ``None``. ``now`` is Unix time (for HTTP-date values)."""
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        seconds = _number(ms)
        if seconds is not None:
            return _sane(seconds / 1000.0)
    value = _header(headers, "retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return _sane(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return _sane(max(0.0, when.timestamp() - now))


def parse_should_retry(headers: Mapping[str, str]) -> bool | None:
    """``x-should-retry``: ``True``/``False`` when the upstream says so, else ``None``.

    The classifier lets it override the retry column only: failover and breaker stay as classified.
    """
    value = (_header(headers, "x-should-retry") or "").strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.strip().lower() == name:
            return value
    return None


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value else None  # NaN


def _sane(seconds: float) -> float | None:
    if seconds < 0 or seconds > _MAX_SANE:
        return None
    return seconds
