"""Request limit (request scope, right after idempotency, before the cache): requests per minute
and requests in flight, per key, user, team and tier (:mod:`.tenants`); for an alias without a
cache, tokens per minute too.

A cache hit is a request, so this sits before the cache; a replay of an idempotent answer is not,
so it sits after idempotency. One call to the store takes a concurrency slot (a lease per request,
held until the answer is complete: for a stream, until it ends, fails or is closed, through a
:class:`~llmrelay.streams.StreamObserver`) and one request from every RPM counter that applies,
all or nothing (one round trip to Redis). A refusal is a 429 with ``Retry-After`` (or, with the
tier's ``queue``, a wait for room first). The decision nearest exhaustion goes to
``ctx.stats.requests`` for the ``x-ratelimit-*-requests`` headers. A lease also ends by itself at
the deadline (plus a minute), so a crashed replica never holds a slot for ever.

**Tokens in the same call.** When the request's alias has no cache (``cached`` says), nothing
between here and :mod:`.token_limit` can answer the request, so this policy reserves the token
estimate in the same all-or-nothing take, and :class:`~llmrelay.policies.token_limit.TokenLimit`
leaves that request alone: one round trip to the store per request, not two. At the end one call
gives the slots back and reconciles the tokens (:meth:`RateLimits.leave`). An alias with a cache
keeps two calls: its tokens are taken after the cache, so a hit takes none and is never refused
for tokens (taking them here and refunding on a hit would refuse a hit when the TPM is spent).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence

from llmrelay.context import Context
from llmrelay.policies.queue import Queue
from llmrelay.policies.tenants import Tenancy, record, refusal
from llmrelay.policies.token_limit import adjustment, estimate
from llmrelay.service import Request, Result, Service
from llmrelay.stores.rates import RateLimits, Take
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import Usage

LEASE_WITHOUT_DEADLINE = 3600.0


class RequestLimit:
    def __init__(self, tenancy: Tenancy, store: RateLimits, *, cached: Callable[[str], bool]) -> None:
        self._tenancy = tenancy
        self._store = store
        self._cached = cached
        self._queue = Queue(store)
        self._leases = os.urandom(8).hex() + ":"
        self._count = itertools.count()

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        applied = self._tenancy.applied(request, ctx)
        if applied is None:
            return await call_next(request, ctx)
        slots, takes = applied.slots, applied.requests
        tokens: list[Take] = []
        if applied.has_tokens and not self._cached(request.model):
            tokens = applied.tokens(estimate(request))
        if not slots and not takes and not tokens:
            return await call_next(request, ctx)
        lease, ttl = "", 0.0
        if slots:
            # Not ctx.request_id (a caller may choose that): unique per replica and request.
            lease = f"{self._leases}{next(self._count)}"
            remaining = ctx.remaining()
            ttl = LEASE_WITHOUT_DEADLINE if remaining is None else max(0.0, remaining) + 60.0
        store = self._store
        every = takes + tokens if tokens else takes
        if applied.queue:
            decisions = await self._queue.admit(
                (slots[0][0] if slots else every[0].key),
                lambda line: store.take(every, slots=slots, lease=lease, ttl=ttl, line=line),
                queue=applied.queue,
                ctx=ctx,
            )
        else:
            decisions = await store.take(every, slots=slots, lease=lease, ttl=ttl)
        held = decisions[: len(slots)]
        counted = decisions[len(slots) : len(slots) + len(takes)]
        reserved = decisions[len(slots) + len(takes) :]
        if counted:
            record(ctx, "requests", counted)
        if reserved:
            record(ctx, "tokens", reserved)
        if not all(d.allowed for d in held):
            raise refusal(applied, held, "c")
        if not all(d.allowed for d in counted):
            raise refusal(applied, counted, "r")
        if not all(d.allowed for d in reserved):
            raise refusal(applied, reserved, "t")
        if not slots and not tokens:
            return await call_next(request, ctx)
        keys = [key for key, _ in slots]
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await store.leave(keys, lease, adjust=adjustment(tokens, None))
            raise
        if isinstance(result, ChatStream):
            result.observe(_Leave(store, keys, lease, tokens))
        else:
            await store.leave(keys, lease, adjust=adjustment(tokens, result.usage))
        return result


class _Leave(StreamObserver):
    """Frees the stream's concurrency slots and reconciles its tokens once it has ended, failed
    or been closed (all of them back unless it ended)."""

    def __init__(self, store: RateLimits, keys: list[str], lease: str, tokens: Sequence[Take]) -> None:
        self._store = store
        self._keys = keys
        self._lease = lease
        self._tokens = tokens

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        usage: Usage | None = stream.final().usage if error is None and stream.done else None
        await self._store.leave(self._keys, self._lease, adjust=adjustment(self._tokens, usage))
