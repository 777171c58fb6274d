"""How long to wait before retry number ``attempt``: a pure function, tested with a table.

Exponential backoff with **full jitter** (AWS architecture blog, "Exponential Backoff And Jitter"):
``rand() * min(cap, base * 2**attempt)``. Jitter spreads a crowd of clients that failed together, so
they do not come back together. An upstream's own ``Retry-After`` wins over the formula; one longer
than ``max_retry_after`` means this target will not be usable soon, so the answer is ``None`` (do not
retry here; the router fails over instead).
"""

from __future__ import annotations

from collections.abc import Callable


def retry_delay(
    attempt: int,
    *,
    retry_after: float | None,
    base: float,
    cap: float,
    max_retry_after: float,
    rand: Callable[[], float],
) -> float | None:
    """Seconds to wait before retry ``attempt`` (0 for the first retry), or ``None``: do not retry."""
    if retry_after is not None:
        return retry_after if retry_after <= max_retry_after else None
    return rand() * min(cap, base * 2.0**attempt)
