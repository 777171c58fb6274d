"""Rate-limit headers on every answer a tenant limit applied to, in each face's own convention.

OpenAI's: ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
``x-ratelimit-reset-requests`` and the ``-tokens`` equivalents, resets as Go-style durations
(``6m0s``, ``1.5s``, ``20ms``): the time until the counter is full again. Anthropic's, on
``/v1/messages`` (in addition): ``anthropic-ratelimit-requests-limit`` / ``-remaining`` / ``-reset``
and the ``tokens`` equivalents, resets as RFC 3339 times. When several limits apply the headers
report the one nearest exhaustion (``ctx.stats``, filled by the limit policies).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from llmrelay.context import CallStats


def add_rate_headers(headers: dict[str, str], stats: CallStats, *, anthropic: bool, wall: float) -> None:
    for kind, decision in (("requests", stats.requests), ("tokens", stats.tokens)):
        if decision is None:
            continue
        limit, remaining = str(int(decision.limit)), str(decision.remaining)
        headers[f"x-ratelimit-limit-{kind}"] = limit
        headers[f"x-ratelimit-remaining-{kind}"] = remaining
        headers[f"x-ratelimit-reset-{kind}"] = duration(decision.reset)
        if anthropic:
            headers[f"anthropic-ratelimit-{kind}-limit"] = limit
            headers[f"anthropic-ratelimit-{kind}-remaining"] = remaining
            headers[f"anthropic-ratelimit-{kind}-reset"] = rfc3339(wall + decision.reset)


def duration(seconds: float) -> str:
    """Go's duration format as OpenAI sends it: ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``
    (rounded up to the millisecond: a reset is never announced early)."""
    ms = math.ceil(seconds * 1000 - 1e-6)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60_000)
    text = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if not minutes:
        return text
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{text}"


def rfc3339(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
