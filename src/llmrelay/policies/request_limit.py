"""Request limit (request scope, right after idempotency, before the cache): requests per minute
and requests in flight, per key, user, team and tier (:mod:`.tenants`).

A cache hit is a request, so this sits before the cache; a replay of an idempotent answer is not,
so it sits after idempotency. One call to the store takes a concurrency slot (a lease per request,
held until the answer is complete: for a stream, until it ends, fails or is closed, through a
:class:`~llmrelay.streams.StreamObserver`) and one request from every RPM counter that applies,
all or nothing (one round trip to Redis). A refusal is a 429 with ``Retry-After`` (or, with the
tier's ``queue``, a wait for room first). The decision nearest exhaustion goes to
``ctx.stats.requests`` for the ``x-ratelimit-*-requests`` headers. A lease also ends by itself at
the deadline (plus a minute), so a crashed replica never holds a slot for ever.
"""

from __future__ import annotations

import itertools
import os

from llmrelay.context import Context
from llmrelay.policies.tenants import Queue, Tenancy, record, refusal
from llmrelay.service import Request, Result, Service
from llmrelay.stores.rates import RateLimits
from llmrelay.streams import ChatStream, StreamObserver

LEASE_WITHOUT_DEADLINE = 3600.0


class RequestLimit:
    def __init__(self, tenancy: Tenancy, store: RateLimits) -> None:
        self._tenancy = tenancy
        self._store = store
        self._queue = Queue()
        self._leases = os.urandom(8).hex() + ":"
        self._count = itertools.count()

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        applied = self._tenancy.applied(request, ctx)
        if applied is None:
            return await call_next(request, ctx)
        slots, takes = applied.slots, applied.requests
        if not slots and not takes:  # a tier of tokens only
            return await call_next(request, ctx)
        lease, ttl = "", 0.0
        if slots:
            # Not ctx.request_id (a caller may choose that): unique per replica and request.
            lease = f"{self._leases}{next(self._count)}"
            remaining = ctx.remaining()
            ttl = LEASE_WITHOUT_DEADLINE if remaining is None else max(0.0, remaining) + 60.0
        store = self._store
        if applied.queue:
            decisions = await self._queue.admit(
                (slots[0][0] if slots else takes[0].key),
                lambda: store.take(takes, slots=slots, lease=lease, ttl=ttl),
                queue=applied.queue,
                ctx=ctx,
            )
        else:
            decisions = await store.take(takes, slots=slots, lease=lease, ttl=ttl)
        held, counted = decisions[: len(slots)], decisions[len(slots) :]
        if counted:
            record(ctx, "requests", counted)
        if not all(d.allowed for d in held):
            raise refusal(applied, held, "c")
        if not all(d.allowed for d in counted):
            raise refusal(applied, counted, "r")
        if not slots:
            return await call_next(request, ctx)
        keys = [key for key, _ in slots]
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await store.leave(keys, lease)
            raise
        if isinstance(result, ChatStream):
            result.observe(_Leave(store, keys, lease))
        else:
            await store.leave(keys, lease)
        return result


class _Leave(StreamObserver):
    """Frees the stream's concurrency slots once it has ended, failed or been closed."""

    def __init__(self, store: RateLimits, keys: list[str], lease: str) -> None:
        self._store = store
        self._keys = keys
        self._lease = lease

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        await self._store.leave(self._keys, self._lease)
