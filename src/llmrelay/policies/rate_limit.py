"""Upstream limits: the provider account's RPM/TPM per target, kept by the gateway itself.

Two parts, see docs/architecture.md §4:

* :class:`TargetLimit` (target scope, between ``circuit_breaker`` and ``timeout``): a **try-acquire**
  of one request and the request's token estimate from the target's counters before each attempt
  (:class:`~llmrelay.providers.upstream_limits.UpstreamLimits`, which the key ring also uses for
  keys with limits of their own).
  A refusal raises :class:`~llmrelay.errors.TargetLimited` with the limiter's own wait as
  ``retry_after``: the classifier says no retry and failover, and no breaker failure, so the router
  moves on instead of provoking the upstream's 429. Tokens are reconciled to the actual usage at the
  end (an observer on a stream), and given back when the attempt fails or a stream is cut.
* :class:`HoldForTargets` (request scope, innermost, around the router): when every target failed
  only on rate limits (ours, or an upstream 429 with ``Retry-After``), wait for the shortest of
  their waits and route again, if that wait is within the alias's ``upstream_hold`` (default 10 s)
  and the deadline; otherwise answer 429 at once with the expected wait as ``Retry-After`` instead
  of holding the connection. The SDK holds until the deadline instead: a library caller prefers a
  queued call to a failed one.
"""

from __future__ import annotations

from collections.abc import Callable

from llmrelay.context import Context
from llmrelay.errors import AllTargetsFailed, RateLimited, RelayError
from llmrelay.providers.upstream_limits import UpstreamLimits, limited, per_minute
from llmrelay.service import Request, Result, Service
from llmrelay.stores.rates import RateLimits


class TargetLimit:
    def __init__(self, store: RateLimits, *, label: str, rpm: int | None, tpm: int | None) -> None:
        self._label = label
        self._limits = UpstreamLimits(store, [(f"target:{label}:", per_minute(rpm), per_minute(tpm))])

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        held = await self._limits.take(0, request)
        if isinstance(held, float):
            raise limited(f"target {self._label} is", held)
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await self._limits.settle(held, None)
            raise
        await self._limits.settle(held, result)
        return result


class HoldForTargets:
    def __init__(self, hold_for: Callable[[str], float | None]) -> None:
        self._hold_for = hold_for

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        clock = ctx.clock
        hold = self._hold_for(request.model)
        until = None if hold is None else clock.now() + hold
        if ctx.deadline is not None:
            until = ctx.deadline if until is None else min(until, ctx.deadline)
        while True:
            try:
                return await call_next(request, ctx)
            except RelayError as err:
                wait = _limited_for(err)
                if wait is None:
                    raise
                if until is not None and clock.now() + wait > until:
                    raise RateLimited(
                        f"every target of {request.model!r} is at its rate limit; expected wait {wait:.1f} s",
                        code="upstream_rate_limited",
                        retry_after=wait,
                    ) from err
                await clock.sleep(wait)


def _limited_for(err: RelayError) -> float | None:
    """The shortest wait after which some target should take the request again, when every
    failure was a rate limit with a known wait; ``None`` when anything else failed."""
    errors = err.errors if isinstance(err, AllTargetsFailed) else [("", err)]
    waits = [e.retry_after for _, e in errors if isinstance(e, RateLimited)]
    if len(waits) != len(errors) or any(w is None for w in waits):
        return None
    return min(w for w in waits if w is not None)
