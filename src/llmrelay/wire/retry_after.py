"""How long an upstream asked us to wait, from its response headers.

Pure. Understands ``retry-after-ms`` (OpenAI, milliseconds), ``Retry-After`` in delta-seconds or as
an HTTP-date (RFC 9110 §10.2.3), and ignores garbage, negative values and absurd ones (over a day),
as the official SDKs do. The retry policy applies its own cap on top.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

_MAX_SANE = 86_400.0


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait, or ``None``. ``headers`` keys are lower-case; ``now`` is Unix time."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        seconds = _number(ms)
        if seconds is not None:
            return _sane(seconds / 1000.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return _sane(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return _sane(max(0.0, when.timestamp() - now))


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
