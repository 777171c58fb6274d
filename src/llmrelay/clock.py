"""Time as an injected dependency.

Policies never call ``time`` or ``asyncio.sleep`` directly: they take a :class:`Clock`, so tests
advance a :class:`FakeClock` instead of sleeping. ``now()`` is monotonic seconds (deadlines,
latencies); ``wall()`` is Unix time (``created`` fields, HTTP dates).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        """Cancel the block and raise ``TimeoutError`` once ``seconds`` have passed on this clock."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` on the event loop once ``delay`` seconds have passed on this clock.

        The primitive behind a stream's one timer (:mod:`llmrelay.streams`): cheaper than a
        ``timeout`` block per chunk, because it is armed once and rearmed only when it fires.
        """
        ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class FakeClock:
    """A clock that only moves when told to. ``sleep`` advances it at once and records the call."""

    def __init__(self, start: float = 1_000.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, asyncio.Timeout]] = []
        self._callbacks: list[tuple[float, int, _FakeTimer]] = []
        self._sequence = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward; expire every ``timeout`` block and run every timer now due."""
        self._now += seconds
        while self._callbacks and self._callbacks[0][0] <= self._now:
            callback = heapq.heappop(self._callbacks)[2]
            if not callback.cancelled:
                callback.callback()
        due = [t for t in self._timers if t[0] <= self._now]
        self._timers = [t for t in self._timers if t[0] > self._now]
        loop_now = asyncio.get_running_loop().time() if due else 0.0
        for _, timer in due:
            if not timer.expired():
                timer.reschedule(loop_now)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return self._timeout(seconds)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(callback)
        heapq.heappush(self._callbacks, (self._now + max(0.0, delay), next(self._sequence), timer))
        return timer

    @asynccontextmanager
    async def _timeout(self, seconds: float | None) -> AsyncIterator[object]:
        """A real ``asyncio.timeout`` that this clock expires; registered only while entered."""
        async with asyncio.timeout(None) as timer:
            if seconds is not None and seconds <= 0:
                timer.reschedule(asyncio.get_running_loop().time())
            entry = (self._now + (seconds or 0.0), timer)
            if seconds is not None:
                self._timers.append(entry)
            try:
                yield timer
            finally:
                if entry in self._timers:
                    self._timers.remove(entry)


class _FakeTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
