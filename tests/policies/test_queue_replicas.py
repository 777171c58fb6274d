"""A tier's queue is first come, first served across replicas: two request-limit policies (two
replicas) with their own connections to the real Redis on 6379 and one line there. A waiter on
replica A that is asleep when room comes back is not overtaken by a later arrival on replica B."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from llmrelay.clock import FakeClock, SystemClock
from llmrelay.context import CallStats, Context
from llmrelay.policies.request_limit import RequestLimit
from llmrelay.policies.tenants import Tenancy, TierConfig
from llmrelay.service import Request, Result, Service, compose
from llmrelay.stores.rates_redis import RedisRateLimits
from llmrelay.types import ChatRequest, ChatResponse, text_message
from tests.services import require

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hi"),))


class HeldClock(FakeClock):
    """A fake clock whose sleeps last until the test lets them end (a waiter stays asleep while
    others arrive); ``asleep`` is set at each sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.asleep = asyncio.Event()
        self.wake = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.asleep.set()
        await self.wake.wait()
        self.advance(seconds)


class Upstream:
    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.order.append(ctx.request_id)
        self.entered.set()
        await self.gate.wait()
        return ChatResponse(id="r", model="m", created=1, message=text_message("assistant", "ok"))


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[Service, Service, list[RedisRateLimits], Upstream]]:
    require(6379, "Redis")
    prefix = f"test:rl:{uuid.uuid4().hex}:"
    stores = [RedisRateLimits("redis://127.0.0.1:6379/0", SystemClock(), prefix=prefix, on_error="closed")]
    stores.append(
        RedisRateLimits("redis://127.0.0.1:6379/0", SystemClock(), prefix=prefix, on_error="closed")
    )
    tier = msgspec.convert({"concurrent": 1, "queue": 3600}, TierConfig)
    upstream = Upstream()
    services = []
    for store in stores:
        await store.open()
        tenancy = Tenancy({"paid": tier}, alias_of=lambda name: name, trusts_user=lambda name: False)
        services.append(compose([RequestLimit(tenancy, store, cached=lambda name: False)], upstream))
    try:
        yield services[0], services[1], stores, upstream
    finally:
        for store in stores:
            await store.aclose()


def ctx(clock: FakeClock, name: str) -> Context:
    return Context(clock=clock, stats=CallStats(), principal="key", tier="paid", request_id=name)


async def test_a_sleeping_waiter_is_not_overtaken_by_a_later_arrival_on_another_replica(
    replicas: tuple[Service, Service, list[RedisRateLimits], Upstream],
) -> None:
    a, b, (store_a, _), upstream = replicas
    holder = asyncio.ensure_future(a(REQUEST, ctx(FakeClock(), "holder")))
    await upstream.entered.wait()  # the one slot is held
    waiter_clock = HeldClock()
    waiter = asyncio.ensure_future(a(REQUEST, ctx(waiter_clock, "waiter")))
    await asyncio.wait_for(waiter_clock.asleep.wait(), 5)  # refused, in line, asleep
    upstream.gate.set()
    await holder
    await store_a.settle()  # the slot is free again; the waiter sleeps on
    later_clock = HeldClock()
    later = asyncio.ensure_future(b(REQUEST, ctx(later_clock, "later")))
    # Room is free, but the waiter is ahead in the line: the later arrival must wait too.
    await asyncio.wait_for(later_clock.asleep.wait(), 5)
    assert upstream.order == ["holder"]
    assert later_clock.sleeps == [pytest.approx(0.05)]  # behind someone, not out of room
    waiter_clock.wake.set()
    await asyncio.wait_for(waiter, 5)
    later_clock.wake.set()
    await asyncio.wait_for(later, 5)
    assert upstream.order == ["holder", "waiter", "later"]
