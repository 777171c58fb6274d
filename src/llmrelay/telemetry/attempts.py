"""Attempt stats (target scope, inside the circuit breaker, outside the attempt timeout).

Times every upstream attempt into ``ctx.stats.upstream_seconds`` (the part of a call that is the
upstream's, which the server subtracts to get llmrelay's own overhead) and counts each failed
attempt by canonical error type. Sitting outside :class:`~llmrelay.policies.timeout.AttemptTimeout`
it sees that policy's ``Timeout`` as the attempt's error; inside the breaker, an open circuit is
not an upstream error. The measured time includes the request's translation for the provider
(microseconds) and, on a stream, ends when the provider hands the stream over, right after its
first chunk arrived (the commit point): the rest of a stream is the upstream's and is not
overhead.
"""

from __future__ import annotations

from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import RelayError
from llmrelay.service import Request, Result, Service
from llmrelay.telemetry.metrics import Metrics


class AttemptStats:
    def __init__(self, clock: Clock, metrics: Metrics, *, label: str, provider: str) -> None:
        self._clock = clock
        self._metrics = metrics
        self._label = label
        self._provider = provider

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        started = self._clock.now()
        try:
            return await call_next(request, ctx)
        except RelayError as err:
            self._metrics.upstream_error(self._label, self._provider, type(err).__name__)
            raise
        finally:
            if ctx.stats is not None:
                ctx.stats.upstream_seconds += self._clock.now() - started
