"""Upstream limits: the provider account's RPM/TPM per target, kept by the gateway itself.

Two parts, see docs/architecture.md §4:

* :class:`TargetLimit` (target scope, between ``circuit_breaker`` and ``timeout``): a **try-acquire**
  of one request and the request's token estimate from the target's counters before each attempt.
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
from llmrelay.errors import AllTargetsFailed, RateLimited, RelayError, TargetLimited
from llmrelay.policies.token_limit import reconcile, reconciler
from llmrelay.pricing.tokens import estimate_input_tokens, output_bound
from llmrelay.service import Request, Result, Service
from llmrelay.stores.rates import Rate, RateLimits, Take
from llmrelay.streams import ChatStream

MINUTE = 60.0


class TargetLimit:
    def __init__(self, store: RateLimits, *, label: str, rpm: int | None, tpm: int | None) -> None:
        self._store = store
        self._label = label
        self._requests = Take(f"target:{label}:r", 1, Rate(rpm, MINUTE)) if rpm else None
        self._tpm = Rate(tpm, MINUTE) if tpm else None

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        takes = [self._requests] if self._requests is not None else []
        tokens: list[Take] = []
        if self._tpm is not None:
            estimate = estimate_input_tokens(request) + output_bound(request)
            tokens = [Take(f"target:{self._label}:t", estimate, self._tpm)]
        decisions = await self._store.take(takes + tokens)
        refused = [d for d in decisions if not d.allowed]
        if refused:
            wait = max(d.retry_after for d in refused)
            raise TargetLimited(
                f"target {self._label} is at its own rate limit"
                + ("" if wait == float("inf") else f" for {wait:.1f} s"),
                retry_after=None if wait == float("inf") else wait,
            )
        if not tokens:
            return await call_next(request, ctx)
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await reconcile(self._store, tokens, None)
            raise
        if isinstance(result, ChatStream):
            result.observe(reconciler(self._store, tokens))
        else:
            await reconcile(self._store, tokens, result.usage)
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
