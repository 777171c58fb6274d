"""The tenant limits' own cost, in process: CPU per request and added latency, on vs off.

``bench/run.py`` prices a policy through the whole server (variants ``limits-memory.yaml`` and
``limits-redis.yaml``); on a shared, busy machine its per-request CPU differences are noise of a
few hundred µs. This isolates the two limit policies (``request_limit`` + ``token_limit``, a tier
with rpm, tpm and concurrency) in front of an upstream that answers at once:

For an alias without a cache ``request_limit`` takes requests, concurrency and tokens in one call
(``--cached``: as for an alias with a cache, tokens in a second call after it).

* **CPU µs per request**: back to back, ``time.process_time`` over N calls, off (no policies),
  memory store, Redis store (its background refunds and releases included);
* **added p50 / p99 at a rate**: open loop at ``--rate`` req/s for ``--seconds``, latency of each
  call from its scheduled start, with the Redis store minus without limits.

    .venv/bin/python bench/limits_cost.py                      # memory and Redis on 127.0.0.1:6379
    .venv/bin/python bench/limits_cost.py --redis ""           # memory only
    .venv/bin/python bench/limits_cost.py --cached             # two calls, as behind a cache
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec

from llmrelay.clock import SystemClock
from llmrelay.context import CallStats, Context
from llmrelay.policies.request_limit import RequestLimit
from llmrelay.policies.tenants import Tenancy, TierConfig
from llmrelay.policies.token_limit import TokenLimit
from llmrelay.service import Request, Result, Service, compose
from llmrelay.stores.rates import RateLimits
from llmrelay.stores.rates_memory import MemoryRateLimits
from llmrelay.types import ChatRequest, ChatResponse, Usage, text_message

REQUEST = ChatRequest(model="bench", messages=(text_message("user", "Say something short."),))
ANSWER = ChatResponse(
    id="r",
    model="bench",
    created=1,
    message=text_message("assistant", "ok"),
    usage=Usage(input_tokens=12, output_tokens=30),
)
TIER = msgspec.convert({"rpm": 10**9, "tpm": 10**13, "concurrent": 10**6}, TierConfig)


async def upstream(request: Request, ctx: Context) -> Result:
    return ANSWER


def pipeline(store: RateLimits | None, *, cached: bool) -> Service:
    if store is None:
        return compose([], upstream)
    tenancy = Tenancy({"default": TIER}, alias_of=lambda name: name, trusts_user=lambda name: False)
    if cached:  # tokens after the cache: two store calls per request
        return compose(
            [
                RequestLimit(tenancy, store, cached=_always),
                TokenLimit(tenancy, store, cached=_always),
            ],
            upstream,
        )
    return compose([RequestLimit(tenancy, store, cached=_never)], upstream)  # one store call


def _always(model: str) -> bool:
    return True


def _never(model: str) -> bool:
    return False


async def cpu_per_call(service: Service, store: RateLimits | None, calls: int) -> float:
    clock = SystemClock()
    for _ in range(200):
        await service(REQUEST, Context(clock=clock, stats=CallStats()))
    started = time.process_time()
    for _ in range(calls):
        await service(REQUEST, Context(clock=clock, stats=CallStats()))
    if store is not None:
        await store.settle()
    return (time.process_time() - started) / calls * 1e6


async def open_loop(service: Service, rate: float, seconds: float) -> list[float]:
    clock = SystemClock()
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = loop.time() + 0.05

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        await service(REQUEST, Context(clock=clock, stats=CallStats()))
        latencies.append((loop.time() - at) * 1000)

    await asyncio.gather(*(one(start + i / rate) for i in range(int(rate * seconds))))
    return sorted(latencies)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--cached", action="store_true", help="as for an alias with a cache: tokens in a second call"
    )
    args = parser.parse_args()
    clock = SystemClock()
    stores: dict[str, Callable[[], Awaitable[RateLimits | None]]] = {}

    async def none() -> RateLimits | None:
        return None

    async def memory() -> RateLimits | None:
        return MemoryRateLimits(clock)

    async def redis() -> RateLimits | None:
        from llmrelay.stores.rates_redis import RedisRateLimits

        store = RedisRateLimits(args.redis, clock, prefix=f"bench:rl:{uuid.uuid4().hex}:")
        await store.open()
        return store

    stores = {"off": none, "memory": memory}
    if args.redis:
        stores["redis"] = redis
    cpu: dict[str, list[float]] = {name: [] for name in stores}
    for _ in range(3):  # interleaved, so a busy moment hits every variant alike
        for name, make in stores.items():
            store = await make()
            cpu[name].append(await cpu_per_call(pipeline(store, cached=args.cached), store, args.calls))
            if store is not None:
                await store.aclose()
    base = statistics.median(cpu["off"])
    for name, values in cpu.items():
        median = statistics.median(values)
        print(f"CPU µs/request {name:7} {median:8.1f}   added vs off {median - base:+8.1f}")
    lat: dict[str, list[float]] = {}
    for name, make in stores.items():
        store = await make()
        lat[name] = await open_loop(pipeline(store, cached=args.cached), args.rate, args.seconds)
        if store is not None:
            await store.aclose()
    for name, values in lat.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        added = p50 - percentile(lat["off"], 0.5)
        print(f"@{args.rate:.0f}/s {name:7} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms   added p50 {added:+.3f} ms")


if __name__ == "__main__":
    asyncio.run(main())
