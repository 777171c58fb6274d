"""What the router knows about each target right now: latency EWMA, calls in flight, cool-down.

Updated around every attempt on the injected clock. A streamed answer stays in flight until the
stream ends (the router observes it), so ``least-busy`` sees long streams as the load they are;
its latency sample is the time to the first chunk. An upstream 429 with ``Retry-After`` cools the
target down for that long: it is then tried only after every other target, so the others take the
load instead of the router knocking on a door that said "later".
"""

from __future__ import annotations

from llmrelay.clock import Clock

_ALPHA = 0.3  # EWMA weight of the newest sample: reacts within a few calls, smooths single outliers


class TargetHealth:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.latency: float | None = None
        self.in_flight = 0
        self.cooldown_until = 0.0

    def started(self) -> float:
        self.in_flight += 1
        return self._clock.now()

    def finished(self, started: float, *, ok: bool) -> None:
        """A unary call ended: it is no longer in flight, and (when it succeeded) its latency counts."""
        self.answered(started, ok=ok)
        self.ended()

    def answered(self, started: float, *, ok: bool) -> None:
        """The answer (or a stream's first chunk) arrived: a latency sample when it succeeded."""
        if ok:
            sample = self._clock.now() - started
            self.latency = sample if self.latency is None else _ALPHA * sample + (1 - _ALPHA) * self.latency

    def ended(self) -> None:
        """The call is no longer in flight (for a stream: it was read to its end, failed or closed)."""
        self.in_flight -= 1

    def cool_down(self, seconds: float) -> None:
        self.cooldown_until = max(self.cooldown_until, self._clock.now() + seconds)

    @property
    def cooling(self) -> bool:
        return self._clock.now() < self.cooldown_until
