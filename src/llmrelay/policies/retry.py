"""Retry: the same target again after a retryable failure (target scope, outermost).

Sits outside the circuit breaker so every attempt counts towards it, and an open circuit
(``CircuitOpen``: no retry, failover) ends the loop at once so the router moves on. What may be
retried is :func:`~llmrelay.classify.classify`'s call alone (connection errors, timeouts before the
first chunk, 408, 429, 5xx, 529; an upstream's ``x-should-retry`` overrides). It stops when:
``max_retries`` is spent, the delay (:func:`~.backoff.retry_delay`, Retry-After honoured) would pass
the request's deadline, Retry-After is beyond ``max_retry_after``, or the shared
:class:`~.retry_budget.RetryBudget` is empty.

Streams: a provider returns a stream only after its first chunk, so a stream that comes back is
final; failures while it is read are never retried (the commit point).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import msgspec

from llmrelay.classify import classify
from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import RelayError
from llmrelay.policies.backoff import retry_delay
from llmrelay.policies.retry_budget import RetryBudget
from llmrelay.service import Request, Result, Service

log = logging.getLogger("llmrelay.retry")


class RetryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Defaults follow the official SDKs: 2 retries, 0.5 s base, 8 s cap."""

    max_retries: int = 2
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 60.0
    budget_ratio: float = 0.2
    budget_min_per_second: float = 1.0
    enforce: bool = True


class Retry:
    def __init__(
        self,
        config: RetryConfig,
        clock: Clock,
        *,
        budget: RetryBudget,
        label: str,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._config = config
        self._clock = clock
        self._budget = budget
        self._label = label
        self._rand = rand

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        self._budget.record_request()
        attempt = 0
        while True:
            if ctx.stats is not None:
                ctx.stats.attempts += 1
            try:
                return await call_next(request, ctx.replace(attempt=attempt) if attempt else ctx)
            except RelayError as err:
                delay = self._delay(err, attempt, ctx)
                if delay is None:
                    raise
                if not self._config.enforce:
                    log.info("shadow: would retry %s after %.3fs (%s)", self._label, delay, err.code)
                    raise
                if ctx.stats is not None:
                    ctx.stats.backoff_seconds += delay
                await self._clock.sleep(delay)
                attempt += 1

    def _delay(self, err: RelayError, attempt: int, ctx: Context) -> float | None:
        config = self._config
        if attempt >= config.max_retries or not classify(err).retry:
            return None
        delay = retry_delay(
            attempt,
            retry_after=err.retry_after,
            base=config.base,
            cap=config.cap,
            max_retry_after=config.max_retry_after,
            rand=self._rand,
        )
        remaining = ctx.remaining()
        if delay is None or (remaining is not None and delay >= remaining):
            return None
        return delay if self._budget.try_retry() else None
