"""A stream's time limits, kept by one timer: the earliest of an absolute deadline and the
longest wait for the upstream's next read.

:class:`~llmrelay.streams.ChatStream` asks :meth:`StreamLimits.wait` for each read of its source
while a limit is registered. The timer is armed when a wait begins and rearmed only when it fires
early (the idle limit moves with every read; the deadline does not), instead of a timeout scope
per chunk. An expiry cancels the waiting task (which closes the upstream connection) and raises
the error the limit was registered with, from the wait; :attr:`StreamLimits.expired` tells the
stream afterwards that the failure was a limit, not an interruption.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

from llmrelay.clock import Clock, TimerHandle
from llmrelay.errors import RelayError
from llmrelay.types import ChatChunk

Batch = Sequence[ChatChunk]
ErrorFactory = Callable[[], RelayError]


class StreamLimits:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until: float | None = None
        self._until_error: ErrorFactory | None = None
        self._idle: float | None = None
        self._idle_error: ErrorFactory | None = None
        self._timer: TimerHandle | None = None
        self._timer_at = 0.0
        self._waiter: asyncio.Task[object] | None = None
        self._waiting_since = 0.0
        self.expired: ErrorFactory | None = None
        """The limit that ended the stream, once one has."""
        self._cancels_before = 0

    def until(self, at: float, error: ErrorFactory) -> None:
        if self._until is None or at < self._until:
            self._until, self._until_error = at, error

    def idle(self, seconds: float, error: ErrorFactory) -> None:
        if self._idle is None or seconds < self._idle:
            self._idle, self._idle_error = seconds, error

    async def wait(self, source: AsyncIterator[Batch]) -> Batch:
        """The source's next batch, within the limits (the only place the timer acts)."""
        now = self._clock.now()
        if self._until is not None and now >= self._until:
            assert self._until_error is not None
            self.expired = self._until_error
            raise self._until_error()
        due = self._until if self._until is not None else now + (self._idle or 0.0)
        if self._idle is not None:
            due = min(due, now + self._idle)
        if self._timer is None or due < self._timer_at:
            self._arm(due - now, due)
        task = asyncio.current_task()
        self._waiter, self._waiting_since = task, now
        try:
            return await anext(source)
        except asyncio.CancelledError:
            expired = self.expired
            if expired is not None and task is not None and task.uncancel() <= self._cancels_before:
                raise expired() from None
            raise
        finally:
            self._waiter = None

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, delay: float, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self._clock.call_later(delay, self._on_timer), at

    def _on_timer(self) -> None:
        """The timer fired: expire the wait if a limit has passed, else rearm for the next due time."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or self.expired is not None:
            return  # not waiting now: the next wait checks the limits and arms again
        now = self._clock.now()
        due: float | None = None
        if self._until is not None:
            if now >= self._until:
                self._expire(waiter, self._until_error)
                return
            due = self._until
        if self._idle is not None:
            idle_due = self._waiting_since + self._idle
            if now >= idle_due:
                self._expire(waiter, self._idle_error)
                return
            due = idle_due if due is None else min(due, idle_due)
        if due is not None:
            self._arm(due - now, due)

    def _expire(self, waiter: asyncio.Task[object], error: ErrorFactory | None) -> None:
        assert error is not None
        self.expired = error
        self._cancels_before = waiter.cancelling()
        waiter.cancel()
