"""The RateLimit protocol and its one decision rule (GCRA), shared by every backend.

Rate limits (tenant RPM/TPM in the request scope, the upstream account's RPM/TPM in the target
scope, see docs/architecture.md §4) count against a store that takes **N units at once, atomically,
over several counters**: a request is admitted only if every limit that applies to it (its key, its
user, its team, its tier) has room, and then all of them are charged; otherwise none is.

The rule is GCRA (the generic cell rate algorithm, a token bucket kept as one number per counter):
a :class:`Rate` of ``limit`` units per ``period`` seconds emits one unit every
``period / limit`` seconds and allows a burst of ``limit``. A counter's state is its *theoretical
arrival time* (``tat``): when the bucket will be full again. Taking ``n`` units moves it
``n * interval`` later; the take is allowed while the new ``tat`` is at most ``period`` ahead of
now. Refunds move it back (never before now). One number per counter means a Redis backend needs
one ``GET``/``SET`` per counter in one Lua script, and the state expires by itself at ``tat``.

:func:`decide` is the rule as a pure function: the memory backend applies it to its dict, the Redis
backend's script applies the same rule on the server and returns the state it saw, from which the
client rebuilds the same :class:`Decision`. Concurrency (requests in flight) is a counter of leases,
taken in the same all-or-nothing call (``slots``) and given back with :meth:`RateLimits.leave`,
each with a time to live so a crashed replica's leases run out by themselves.

A request that could never fit (more units than the whole ``limit``) is refused with an infinite
``retry_after``: the caller says so instead of queueing forever.

**Waiting lines.** A take may name a :class:`Line`: the first-come-first-served order of the
requests waiting for the same counters, kept in the store beside them, so waiters on every replica
sharing it are served in the order they first were refused. Such a take is admitted only when no
one is ahead of it in the line; a refused one joins the line (keeping its place on later tries),
an admitted one leaves it, and one that gives up leaves it with :meth:`RateLimits.leave`. A
refusal only because others are ahead says so with ``retry_after`` :data:`LINE_POLL`; a waiter
that crashed is dropped from the line :data:`LINE_GRACE` seconds after its ``wait`` is over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec

from llmrelay.errors import RelayError

OnError = Literal["open", "closed"]


class Rate(msgspec.Struct, frozen=True, gc=False):
    """``limit`` units per ``period`` seconds (a burst of ``limit``, refilled evenly)."""

    limit: float
    period: float = 60.0

    @property
    def interval(self) -> float:
        return self.period / self.limit


class Take(msgspec.Struct, frozen=True, gc=False):
    """``units`` from the counter ``key`` at ``rate`` (negative units refund, in :meth:`adjust`)."""

    key: str
    units: float
    rate: Rate


class Line(msgspec.Struct, frozen=True, gc=False):
    """``member``'s place in the line of waiters ``key`` (see above); ``wait`` bounds how long an
    entry is kept."""

    key: str
    member: str
    wait: float


LINE_POLL = 0.05
"""Seconds a waiter behind others sleeps before asking again (the one ahead is served first)."""

LINE_GRACE = 1.0
"""Seconds a place in a line is kept past its ``wait`` before it is dropped as abandoned."""


class Decision(msgspec.Struct, frozen=True, gc=False):
    """What one counter said. ``remaining`` is whole units left after this take; ``reset`` the
    seconds until the counter is full again; ``retry_after`` the seconds until this take would be
    allowed (0 when it was; ``inf`` when it never can be)."""

    allowed: bool
    limit: float
    remaining: int
    reset: float
    retry_after: float = 0.0

    @property
    def never_fits(self) -> bool:
        return math.isinf(self.retry_after)

    @property
    def headroom(self) -> float:
        """Fraction of the limit left: the counter nearest exhaustion has the smallest."""
        return self.remaining / self.limit if self.limit else 0.0


def behind(decisions: Sequence[Decision]) -> list[Decision]:
    """The decisions of a take refused only because others are ahead in its line."""
    return [
        msgspec.structs.replace(d, allowed=False, retry_after=max(d.retry_after, LINE_POLL))
        for d in decisions
    ]


_EPSILON = 1e-9


def decide(tat: float, now: float, units: float, rate: Rate) -> tuple[float, Decision]:
    """Take ``units`` from a counter whose state is ``tat`` at ``now``: the new state (unchanged
    when refused) and the decision."""
    interval = rate.interval
    base = tat if tat > now else now
    new = base + units * interval
    if units > rate.limit:
        remaining = int((now + rate.period - base) / interval + _EPSILON)
        return tat, Decision(False, rate.limit, max(0, remaining), base - now, math.inf)
    wait = new - rate.period - now
    if wait > _EPSILON:
        remaining = int((now + rate.period - base) / interval + _EPSILON)
        return tat, Decision(False, rate.limit, max(0, remaining), base - now, wait)
    remaining = int((now + rate.period - new) / interval + _EPSILON)
    return new, Decision(True, rate.limit, max(0, remaining), new - now)


def adjusted(tat: float, now: float, units: float, rate: Rate) -> float:
    """The state after charging ``units`` unconditionally (a reconcile: actual usage above the
    reservation) or refunding ``-units`` (below it, or a failure); never earlier than ``now``."""
    base = tat if tat > now else now
    return max(now, base + units * rate.interval) if units >= 0 else max(now, tat + units * rate.interval)


def admit(decisions: Sequence[Decision]) -> bool:
    return all(d.allowed for d in decisions)


def nearest(decisions: Sequence[Decision]) -> Decision | None:
    """The decision nearest exhaustion (what the ``x-ratelimit-*`` headers report)."""
    return min(decisions, key=lambda d: d.headroom, default=None)


class LimitStoreDown(RelayError):
    """The rate-limit store cannot be reached and ``state.redis.on_error`` is ``closed``."""

    status = 503
    code = "rate_limit_store_unavailable"


class RateLimits(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ping(self) -> bool: ...

    async def take(
        self,
        takes: Sequence[Take],
        *,
        slots: Sequence[tuple[str, int]] = (),
        lease: str = "",
        ttl: float = 0.0,
        line: Line | None = None,
    ) -> list[Decision]:
        """All or nothing: hold one slot of each ``(key, limit)`` of ``slots`` under ``lease`` for
        at most ``ttl`` seconds and charge every counter of ``takes``, if each has room (and, with
        a ``line``, no one is ahead in it); else none. One decision per slot, then one per take
        (one round trip for a remote store)."""
        ...

    async def adjust(self, takes: Sequence[Take]) -> None:
        """Charge (or refund, with negative units) every counter without asking. A remote store
        may finish it in the background (:meth:`settle` waits for that)."""
        ...

    async def peek(self, takes: Sequence[Take]) -> list[Decision]:
        """What :meth:`take` would say, charging nothing (``/v1/key/info``)."""
        ...

    async def leave(self, keys: Sequence[str], lease: str, *, adjust: Sequence[Take] = ()) -> None:
        """Give back the slots ``lease`` holds in ``keys`` (or its place in the line of that key)
        and charge (or refund) ``adjust`` as :meth:`adjust` does: the end of a request in one call
        (maybe in the background)."""
        ...

    async def settle(self) -> None:
        """Wait until every adjust and leave so far has reached the store."""
        ...
