"""Circuit breaker (target scope, inside retry): stop calling a target that keeps failing.

One instance per target. An open circuit raises :class:`CircuitOpen` at once (no retry, failover:
the router moves to the next target without waiting). What counts as a failure is the classifier's
``breaker_failure``; caller errors count as neither, and so does any exception that is not a
:class:`~llmrelay.errors.RelayError` (a bug, a cancellation): it gives back a half-open probe slot,
so no outcome can leave the breaker locked. On a stream, returning it counts as a success of the
attempt, and a failure while it is read (after the commit point) counts as a failure: an observer
(:class:`~llmrelay.streams.StreamObserver`) sees the stream's end.
Shadow mode (``enforce: false``) keeps the state and logs what it would refuse, but refuses nothing.
The state is readable through :meth:`snapshot` (admin endpoint ``/admin/circuits``); every
transition is told to ``on_change`` (the builder passes the metrics' ``circuit``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from llmrelay.classify import classify
from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import CircuitOpen, RelayError
from llmrelay.policies.breaker_state import BreakerState, CircuitBreakerConfig, State
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream, StreamObserver

log = logging.getLogger("llmrelay.circuit_breaker")


class CircuitBreaker:
    def __init__(
        self,
        config: CircuitBreakerConfig,
        clock: Clock,
        *,
        label: str,
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        self._enforce = config.enforce
        self._label = label
        self.state = BreakerState(config, clock, on_change=on_change)
        self._stream_end = _StreamEnd(self.state)

    def snapshot(self) -> dict[str, Any]:
        return {"target": self._label, "enforce": self._enforce, **self.state.snapshot()}

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if not self.state.allow():
            if self._enforce:
                raise CircuitOpen(f"circuit open for {self._label}", retry_after=self.state.retry_after())
            log.info("shadow: circuit for %s is %s; letting the call through", self._label, self.state.state)
        try:
            result = await call_next(request, ctx)
        except RelayError as err:
            self._record(err)
            raise
        except BaseException:
            self.state.neutral()
            raise
        self.state.success()
        if isinstance(result, ChatStream):
            result.observe(self._stream_end)
        return result

    def _record(self, err: BaseException) -> None:
        if classify(err).breaker_failure:
            self.state.failure()
        else:
            self.state.neutral()


class _StreamEnd(StreamObserver):
    """Counts a failure after the commit point (an interrupted or silent stream) against the target."""

    def __init__(self, state: BreakerState) -> None:
        self._state = state

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if error is not None and classify(error).breaker_failure:
            self._state.failure()
