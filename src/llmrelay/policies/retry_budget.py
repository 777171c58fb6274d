"""A retry budget: retries may add at most ``ratio`` of the recent traffic, plus a small floor.

Counting retries per request (``max_retries``) is not enough during an outage: every request would
multiply into ``1 + max_retries`` upstream calls just when the upstream is weakest. Finagle's answer,
kept here: each request deposits ``ratio`` of a retry into a budget that drains over ``window``
seconds, and a retry withdraws one. ``min_per_second`` keeps retries possible at low traffic.
"""

from __future__ import annotations

from collections import deque

from llmrelay.clock import Clock


class RetryBudget:
    def __init__(
        self, clock: Clock, *, ratio: float = 0.2, window: float = 10.0, min_per_second: float = 1.0
    ) -> None:
        self._clock = clock
        self._ratio = ratio
        self._window = window
        self._floor = min_per_second * window
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_request(self) -> None:
        now = self._clock.now()
        self._requests.append(now)
        _expire(self._requests, now - self._window)

    def try_retry(self) -> bool:
        """Withdraw one retry if the budget allows it."""
        now = self._clock.now()
        _expire(self._requests, now - self._window)
        _expire(self._retries, now - self._window)
        if len(self._retries) >= self._floor + self._ratio * len(self._requests):
            return False
        self._retries.append(now)
        return True


def _expire(events: deque[float], before: float) -> None:
    while events and events[0] <= before:
        events.popleft()
