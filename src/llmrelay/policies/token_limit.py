"""Token limit (request scope, after the cache: a hit takes no tokens): tokens per minute per key,
user, team and tier (:mod:`.tenants`), by reservation.

Before the call it reserves the request's estimate (``llmrelay.pricing.tokens``: the calibrated
input estimate plus the output bound, which ``max_tokens`` caps) from every TPM counter that
applies, all or nothing; a request whose estimate exceeds a whole TPM is refused at once, saying
so. At the end it reconciles to the actual usage: a unary answer from its ``usage``, a stream from
its final usage through a :class:`~llmrelay.streams.StreamObserver` (no wrapper); usage above the
estimate is charged, below it refunded. A failure, or a stream that fails or is closed before its
end, gives the whole reservation back. The decision nearest exhaustion goes to
``ctx.stats.tokens`` for the ``x-ratelimit-*-tokens`` headers.
"""

from __future__ import annotations

from llmrelay.context import Context
from llmrelay.policies.tenants import Queue, Tenancy, record, refusal
from llmrelay.pricing.tokens import estimate_input_tokens, output_bound
from llmrelay.service import Request, Result, Service
from llmrelay.stores.rates import RateLimits, Take
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import Usage


class TokenLimit:
    def __init__(self, tenancy: Tenancy, store: RateLimits) -> None:
        self._tenancy = tenancy
        self._store = store
        self._queue = Queue()

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        applied = self._tenancy.applied(request, ctx)
        if applied is None:
            return await call_next(request, ctx)
        if not applied.has_tokens:
            return await call_next(request, ctx)
        takes = applied.tokens(estimate_input_tokens(request) + output_bound(request))
        store = self._store
        if applied.queue:
            decisions = await self._queue.admit(
                takes[0].key, lambda: store.take(takes), queue=applied.queue, ctx=ctx
            )
        else:
            decisions = await store.take(takes)
        record(ctx, "tokens", decisions)
        if not all(d.allowed for d in decisions):
            raise refusal(applied, decisions, "t")
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await reconcile(self._store, takes, None)
            raise
        if isinstance(result, ChatStream):
            result.observe(reconciler(self._store, takes))
        else:
            await reconcile(self._store, takes, result.usage)
        return result


async def reconcile(store: RateLimits, takes: list[Take], usage: Usage | None) -> None:
    """Charge the difference between actual ``usage`` and the reservation (``None``: nothing was
    used that we know of, so all of it goes back). An answer without usage (a provider that did
    not report it) keeps the reservation: the estimate is the best figure there is."""
    actual = 0 if usage is None else usage.input_tokens + usage.output_tokens
    if not takes or actual == takes[0].units or (usage is not None and actual == 0):
        return
    await store.adjust([Take(t.key, actual - t.units, t.rate) for t in takes])


def reconciler(store: RateLimits, takes: list[Take]) -> StreamObserver:
    """The observer that reconciles a stream's reservation when it ends (the upstream limits use
    it too)."""
    return _Reconcile(store, takes)


class _Reconcile(StreamObserver):
    def __init__(self, store: RateLimits, takes: list[Take]) -> None:
        self._store = store
        self._takes = takes

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        ended = error is None and stream.done
        await reconcile(self._store, self._takes, stream.final().usage if ended else None)
