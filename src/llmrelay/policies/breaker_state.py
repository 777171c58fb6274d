"""The circuit breaker's state machine, without I/O: closed → open → half-open → closed.

* **closed**: calls pass. It trips (→ open) on ``failures`` consecutive failures, or when at least
  ``min_calls`` calls in the last ``window`` seconds failed at a ratio of ``failure_ratio`` or more.
* **open**: calls are refused for ``cooldown`` seconds, then the next ``allow()`` moves to half-open.
* **half-open**: at most ``half_open_probes`` calls at a time; a success closes the circuit, a
  failure opens it again for another cooldown.

Outcomes that are neither (the caller's own errors, cancelled calls) only give back a probe slot.

The ratio window is ``BUCKETS`` fixed time buckets of counters with running totals, so recording
an outcome is O(1) and a busy target's window costs at most ``BUCKETS + 1`` small entries however
many calls it sees (one entry per call cost 1.2 ms per failure at 2,000 calls/s). The price is
granularity: a call leaves the window between ``window - window / BUCKETS`` and ``window`` seconds
after it was recorded, never later. A half-open success clears the window, so a recovered target
starts afresh rather than tripping again on the failures that opened it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from llmrelay.clock import Clock

State = Literal["closed", "open", "half_open"]

BUCKETS = 20


class CircuitBreakerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``failures`` is 10, not the usual 5: under load, calls from many requests interleave, and a
    target failing 30% of the time (noisy, but worth keeping) shows 5 failures in a row about twice
    per thousand calls; 10 in a row about once per 200,000. A dead target fails every call, so it
    still trips within a few requests; the ratio rule catches targets that are mostly failing."""

    failures: int = 10
    failure_ratio: float = 0.5
    min_calls: int = 20
    window: float = 30.0
    cooldown: float = 30.0
    half_open_probes: int = 1
    enforce: bool = True


class BreakerState:
    def __init__(
        self,
        config: CircuitBreakerConfig,
        clock: Clock,
        *,
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        """``on_change(old, new)`` is told every transition (metrics); it must not raise."""
        self._config = config
        self._clock = clock
        self._on_change = on_change
        self.state: State = "closed"
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.probes = 0
        self.trips = 0
        self._width = max(config.window, 1e-9) / BUCKETS
        self._buckets: deque[list[int]] = deque()  # [bucket number, calls, failures], oldest first
        self._recent_calls = 0
        self._recent_failures = 0

    def allow(self) -> bool:
        """May a call go through now? (In half-open, a ``True`` takes a probe slot.)"""
        if self.state == "open":
            assert self.opened_at is not None
            if self._clock.now() < self.opened_at + self._config.cooldown:
                return False
            self._move("half_open")
        if self.state == "half_open":
            if self.probes >= self._config.half_open_probes:
                return False
            self.probes += 1
        return True

    def retry_after(self) -> float | None:
        if self.state != "open" or self.opened_at is None:
            return None
        return max(0.0, self.opened_at + self._config.cooldown - self._clock.now())

    def success(self) -> None:
        self.consecutive_failures = 0
        self._remember(ok=True)
        if self.state == "half_open":
            self._move("closed")
            self._buckets.clear()
            self._recent_calls = self._recent_failures = 0

    def failure(self) -> None:
        self.consecutive_failures += 1
        self._remember(ok=False)
        if self.state == "half_open" or self._should_trip():
            self._open()

    def neutral(self) -> None:
        if self.state == "half_open" and self.probes > 0:
            self.probes -= 1

    def snapshot(self) -> dict[str, Any]:
        self._expire(self._bucket())
        return {
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "recent_calls": self._recent_calls,
            "recent_failures": self._recent_failures,
            "opened_at": self.opened_at,
            "retry_after": self.retry_after(),
            "trips": self.trips,
        }

    def _bucket(self) -> int:
        return int(self._clock.now() // self._width)

    def _remember(self, *, ok: bool) -> None:
        number = self._bucket()
        self._expire(number)
        if not self._buckets or self._buckets[-1][0] != number:
            self._buckets.append([number, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        self._recent_calls += 1
        if not ok:
            bucket[2] += 1
            self._recent_failures += 1

    def _expire(self, current: int) -> None:
        while self._buckets and self._buckets[0][0] <= current - BUCKETS:
            _, calls, failures = self._buckets.popleft()
            self._recent_calls -= calls
            self._recent_failures -= failures

    def _should_trip(self) -> bool:
        config = self._config
        if self.state != "closed":
            return False
        if self.consecutive_failures >= config.failures:
            return True
        if self._recent_calls < config.min_calls:
            return False
        return self._recent_failures / self._recent_calls >= config.failure_ratio

    def _open(self) -> None:
        self.opened_at = self._clock.now()
        self.trips += 1
        self._move("open")

    def _move(self, new: State) -> None:
        old, self.state, self.probes = self.state, new, 0
        if self._on_change is not None:
            self._on_change(old, new)
