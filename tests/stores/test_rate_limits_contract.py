"""One contract for every rate-limit backend: memory and a real Redis server (unique key prefix
per test). Redis keeps its own time, so these use periods long enough that a test's run time
cannot refill a unit, except where refill itself is the point."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from llmrelay.clock import FakeClock, SystemClock
from llmrelay.stores.rates import LINE_POLL, Line, Rate, RateLimits, Take
from llmrelay.stores.rates_memory import MemoryRateLimits
from tests.services import require

REDIS = "redis://127.0.0.1:6379/0"


def redis_store(prefix: str) -> RateLimits:
    from llmrelay.stores.rates_redis import RedisRateLimits

    return RedisRateLimits(REDIS, SystemClock(), prefix=prefix, on_error="closed")


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RateLimits, RateLimits]]:
    """Two handles on one backend: two connections for Redis (two replicas), one dict in memory."""
    if request.param == "redis":
        require(6379, "Redis")
        prefix = f"test:rl:{uuid.uuid4().hex}:"
        pair = (redis_store(prefix), redis_store(prefix))
    else:
        store = MemoryRateLimits(SystemClock())
        pair = (store, store)
    for store in pair:
        await store.open()
    try:
        yield pair
    finally:
        for store in pair:
            await store.aclose()


HOUR = Rate(5, 3600)


async def test_burst_then_refusal_with_a_wait(stores: tuple[RateLimits, RateLimits]) -> None:
    a, b = stores
    decisions = [(await (a if i % 2 else b).take([Take("k", 1, HOUR)]))[0] for i in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert 700 < decisions[-1].retry_after <= 720  # one unit refills every 720 s
    assert 3500 < decisions[-1].reset <= 3600
    assert decisions[0].limit == 5


async def test_all_or_nothing_across_counters(stores: tuple[RateLimits, RateLimits]) -> None:
    a, b = stores
    small, big = Take("small", 1, Rate(1, 3600)), Take("big", 1, HOUR)
    assert [d.allowed for d in await a.take([big, small])] == [True, True]
    assert [d.allowed for d in await b.take([big, small])] == [True, False]
    assert (await a.peek([Take("big", 0, HOUR)]))[0].remaining == 4  # the refusal charged nothing


async def test_never_fits(stores: tuple[RateLimits, RateLimits]) -> None:
    decision = (await stores[0].take([Take("k", 6, HOUR)]))[0]
    assert not decision.allowed
    assert decision.never_fits


async def test_reserve_and_reconcile(stores: tuple[RateLimits, RateLimits]) -> None:
    a, b = stores
    tpm = Rate(1000, 3600)
    assert (await a.take([Take("t", 900, tpm)]))[0].remaining == 100
    assert not (await b.take([Take("t", 200, tpm)]))[0].allowed
    await b.adjust([Take("t", -700, tpm)])  # used 200 of the 900 reserved
    await b.settle()
    assert (await a.take([Take("t", 200, tpm)]))[0].remaining == 600
    await a.adjust([Take("t", 300, tpm)])  # used more than reserved
    await a.settle()
    assert (await b.peek([Take("t", 0, tpm)]))[0].remaining == 300


async def test_refill_over_time(stores: tuple[RateLimits, RateLimits]) -> None:
    fast = Rate(2, 0.2)  # one unit per 100 ms
    a, _ = stores
    await a.take([Take("f", 2, fast)])
    assert not (await a.take([Take("f", 1, fast)]))[0].allowed
    deadline = time.monotonic() + 2
    while not (await a.take([Take("f", 1, fast)]))[0].allowed:
        assert time.monotonic() < deadline, "no unit refilled within 2 s"
        await asyncio.sleep(0.02)  # polling real time (Redis's clock), bounded


async def test_concurrent_takes_admit_exactly_the_burst(stores: tuple[RateLimits, RateLimits]) -> None:
    a, b = stores
    rate = Rate(20, 3600)
    results = await asyncio.gather(*((a if i % 2 else b).take([Take("c", 1, rate)]) for i in range(60)))
    assert sum(r[0].allowed for r in results) == 20


async def test_concurrency_slots(stores: tuple[RateLimits, RateLimits]) -> None:
    a, b = stores
    assert (await a.take([], slots=[("s", 2)], lease="one", ttl=60))[0].allowed
    assert (await b.take([], slots=[("s", 2), ("other", 5)], lease="two", ttl=60))[0].remaining == 0
    refused = await a.take([], slots=[("other", 5), ("s", 2)], lease="three", ttl=60)
    assert [d.allowed for d in refused] == [True, False]
    assert (await b.take([], slots=[("other", 5)], lease="four", ttl=60))[
        0
    ].remaining == 3  # "three" took nothing
    await b.leave(["s"], "one")
    await b.settle()
    assert (await a.take([], slots=[("s", 2)], lease="three", ttl=60))[0].allowed


async def test_leave_gives_back_slots_and_reconciles_tokens_in_one_call(
    stores: tuple[RateLimits, RateLimits],
) -> None:
    a, b = stores
    tpm = Rate(1000, 3600)
    taken = await a.take([Take("lt", 900, tpm)], slots=[("ls", 1)], lease="one", ttl=60)
    assert [d.allowed for d in taken] == [True, True]
    assert not (await b.take([], slots=[("ls", 1)], lease="two", ttl=60))[0].allowed
    await b.leave(["ls"], "one", adjust=[Take("lt", -600, tpm)])  # used 300 of the 900
    await b.settle()
    assert (await a.take([], slots=[("ls", 1)], lease="two", ttl=60))[0].allowed
    assert (await a.peek([Take("lt", 0, tpm)]))[0].remaining == 700
    await a.leave([], "", adjust=[Take("lt", 100, tpm)])  # tokens only: no slot held
    await a.settle()
    assert (await b.peek([Take("lt", 0, tpm)]))[0].remaining == 600


async def test_a_line_serves_its_waiters_in_the_order_they_were_refused(
    stores: tuple[RateLimits, RateLimits],
) -> None:
    a, b = stores
    slot = [("q", 1)]
    first, second = Line("q:q", "w1", 60), Line("q:q", "w2", 60)
    assert (await a.take([], slots=slot, lease="held", ttl=60))[0].allowed
    assert not (await a.take([], slots=slot, lease="l1", ttl=60, line=first))[0].allowed  # joins
    assert not (await b.take([], slots=slot, lease="l2", ttl=60, line=second))[0].allowed  # joins after
    await b.leave(["q"], "held")
    await b.settle()
    refused = (await b.take([], slots=slot, lease="l2", ttl=60, line=second))[0]
    assert not refused.allowed and refused.retry_after == LINE_POLL  # room, but w1 is ahead
    newcomer = await b.take([], slots=slot, lease="l3", ttl=60, line=Line("q:q", "w3", 60))
    assert not newcomer[0].allowed  # and a newcomer is not let in ahead of both
    assert (await a.take([], slots=slot, lease="l1", ttl=60, line=first))[0].allowed  # the head
    await a.leave(["q"], "l1")
    await b.leave(["q:q"], "w3")  # w3 gives up: its place goes
    await a.settle()
    await b.settle()
    assert (await b.take([], slots=slot, lease="l2", ttl=60, line=second))[0].allowed


async def test_an_abandoned_place_in_a_line_runs_out(stores: tuple[RateLimits, RateLimits]) -> None:
    a, b = stores
    rate = Rate(1, 3600)
    assert (await a.take([Take("r", 1, rate)]))[0].allowed
    assert not (await a.take([Take("r", 1, rate)], line=Line("r:q", "crashed", 0.1)))[0].allowed
    await b.adjust([Take("r", -1, rate)])  # room again, but the crashed waiter is ahead
    await b.settle()
    deadline = time.monotonic() + 3
    while not (await b.take([Take("r", 1, rate)], line=Line("r:q", "next", 0.1)))[0].allowed:
        assert time.monotonic() < deadline, "the abandoned place was never dropped"
        await asyncio.sleep(0.05)  # polling real time (Redis's clock), bounded


async def test_leases_expire(stores: tuple[RateLimits, RateLimits]) -> None:
    a, _ = stores
    assert (await a.take([], slots=[("e", 1)], lease="crashed", ttl=0.1))[0].allowed
    deadline = time.monotonic() + 2
    while not (await a.take([], slots=[("e", 1)], lease="next", ttl=60))[0].allowed:
        assert time.monotonic() < deadline, "the lease did not expire"
        await asyncio.sleep(0.02)


async def test_ping(stores: tuple[RateLimits, RateLimits]) -> None:
    assert await stores[0].ping()


async def test_memory_runs_on_the_injected_clock() -> None:
    clock = FakeClock()
    store = MemoryRateLimits(clock)
    await store.take([Take("k", 5, HOUR)])
    clock.advance(720)
    assert (await store.take([Take("k", 1, HOUR)]))[0].allowed
