"""Waiting for room: a tier's ``queue`` (request scope, inside :mod:`.request_limit` and
:mod:`.token_limit`), first come, first served on every replica.

A refused request of a tier with ``queue: N`` waits up to N seconds (never past the deadline) for
room instead of a 429. The order is kept by the rate-limit store itself, beside the counters (a
:class:`~llmrelay.stores.rates.Line`, a sorted set in Redis): a request that is refused joins the
line of its first counter, and a take is admitted only when no one is ahead of it there, so a
waiter on one replica is not overtaken by a later arrival on another, nor by a newcomer on its
own. Between tries a waiter sleeps for the wait its refusal names (the line's short poll when
only others are ahead). A request that gives up (its wait or deadline is over, or its client went
away) leaves the line; one whose replica crashed is dropped from it once its wait is over. A
request that can never fit (more tokens than a whole TPM) is answered at once.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable

from llmrelay.context import Context
from llmrelay.stores.rates import Decision, Line, RateLimits, admit


class Queue:
    def __init__(self, store: RateLimits) -> None:
        self._store = store
        self._members = os.urandom(8).hex() + ":"  # unique per replica: lines are shared
        self._count = itertools.count()

    async def admit(
        self,
        name: str,
        attempt: Callable[[Line], Awaitable[list[Decision]]],
        *,
        queue: float,
        ctx: Context,
    ) -> list[Decision]:
        """Try ``attempt`` in the line ``name`` until it is allowed or waiting longer would pass
        ``queue`` seconds or the deadline; the last decisions either way."""
        line = Line(f"{name}:q", f"{self._members}{next(self._count)}", queue)
        clock = ctx.clock
        until = clock.now() + queue
        if ctx.deadline is not None:
            until = min(until, ctx.deadline)
        admitted = False
        try:
            while True:
                decisions = await attempt(line)
                if admit(decisions):
                    admitted = True
                    return decisions
                refused = [d for d in decisions if not d.allowed]
                if any(d.never_fits for d in refused):
                    return decisions
                wait = max(d.retry_after for d in refused)
                if clock.now() + wait > until:
                    return decisions
                await clock.sleep(wait)
        finally:
            if not admitted:  # refused takes joined the line: leave it
                await self._store.leave([line.key], line.member)
