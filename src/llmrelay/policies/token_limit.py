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

It acts only for aliases with a cache (``cached``): for the others :mod:`.request_limit` has
already reserved the tokens in its own call to the store (one round trip per request), and the
builder leaves this policy out altogether when no alias caches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llmrelay.context import Context
from llmrelay.policies.queue import Queue
from llmrelay.policies.tenants import Tenancy, record, refusal
from llmrelay.pricing.tokens import estimate_input_tokens, output_bound
from llmrelay.service import Request, Result, Service
from llmrelay.stores.rates import RateLimits, Take
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import Usage


class TokenLimit:
    def __init__(self, tenancy: Tenancy, store: RateLimits, *, cached: Callable[[str], bool]) -> None:
        self._tenancy = tenancy
        self._store = store
        self._cached = cached
        self._queue = Queue(store)

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if not self._cached(request.model):
            return await call_next(request, ctx)  # request_limit took the tokens
        applied = self._tenancy.applied(request, ctx)
        if applied is None or not applied.has_tokens:
            return await call_next(request, ctx)
        takes = applied.tokens(estimate(request))
        store = self._store
        if applied.queue:
            decisions = await self._queue.admit(
                takes[0].key, lambda line: store.take(takes, line=line), queue=applied.queue, ctx=ctx
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


def estimate(request: Request) -> int:
    """The tokens a request reserves: its input estimate plus its output bound."""
    return estimate_input_tokens(request) + output_bound(request)


def adjustment(takes: Sequence[Take], usage: Usage | None) -> list[Take]:
    """What to charge for the difference between actual ``usage`` and the reservation ``takes``
    (``None``: nothing was used that we know of, so all of it goes back). An answer without usage
    (a provider that did not report it) keeps the reservation: the estimate is the best figure
    there is. Empty when nothing changes."""
    actual = 0 if usage is None else usage.input_tokens + usage.output_tokens
    if not takes or actual == takes[0].units or (usage is not None and actual == 0):
        return []
    return [Take(t.key, actual - t.units, t.rate) for t in takes]


async def reconcile(store: RateLimits, takes: Sequence[Take], usage: Usage | None) -> None:
    """Charge (or refund) the :func:`adjustment` of ``takes`` to ``usage``."""
    adjust = adjustment(takes, usage)
    if adjust:
        await store.adjust(adjust)


def reconciler(store: RateLimits, takes: Sequence[Take]) -> StreamObserver:
    """The observer that reconciles a stream's reservation when it ends (the upstream limits use
    it too)."""
    return _Reconcile(store, takes)


class _Reconcile(StreamObserver):
    def __init__(self, store: RateLimits, takes: Sequence[Take]) -> None:
        self._store = store
        self._takes = takes

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        ended = error is None and stream.done
        await reconcile(self._store, self._takes, stream.final().usage if ended else None)
