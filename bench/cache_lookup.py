"""What the exact cache adds to one call, in process: the policy's hit and miss paths timed
against the same call without the cache, on the in-process store and on Redis over loopback.

    .venv/bin/python bench/cache_lookup.py                 # memory + redis://127.0.0.1:6379/0
    .venv/bin/python bench/cache_lookup.py --calls 20000 --no-redis

A realistic request (system prompt, a few turns, a tool) and answer (about 300 words); ``call_next``
answers at once, so the figures are the cache's own cost: p50 and p99 of the added microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec

from llmrelay.cache.settings import CacheConfig
from llmrelay.clock import SystemClock
from llmrelay.context import CallStats, Context
from llmrelay.policies.cache import AliasCache, Cache
from llmrelay.service import Request, Result
from llmrelay.stores import open_kv
from llmrelay.types import ChatRequest, ChatResponse, Tool, Usage, text_message

ANSWER = ChatResponse(
    id="r",
    model="m",
    created=1,
    message=text_message("assistant", "word " * 300),
    usage=Usage(input_tokens=400, output_tokens=300),
    target="t",
)
REQUEST = ChatRequest(
    model="bench",
    messages=(
        text_message("system", "You are a helpful assistant. " * 10),
        text_message("user", "What is the capital of France?"),
        text_message("assistant", "Paris."),
        text_message("user", "And of Italy? Answer in one word."),
    ),
    tools=(Tool(name="lookup", parameters={"type": "object", "properties": {"q": {"type": "string"}}}),),
    temperature=0.0,
)


async def upstream(request: Request, ctx: Context) -> Result:
    return ANSWER


async def timed(call: Callable[[int], Awaitable[object]], calls: int) -> list[float]:
    samples = []
    for n in range(calls):
        started = time.perf_counter_ns()
        await call(n)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


async def measure(url: str, calls: int) -> dict[str, float]:
    clock = SystemClock()
    kv = open_kv(url, clock, namespace="b" + uuid.uuid4().hex[:12])
    await kv.open()
    alias = AliasCache("m", CacheConfig(ttl=600))
    cache = Cache(kv, clock, settings_for=lambda _: alias, aliases=[alias], cost=lambda *_: 0.001)
    requests = [msgspec.structs.replace(REQUEST, seed=n) for n in range(calls)]

    def ctx() -> Context:
        return Context(clock=clock, principal="key-a", stats=CallStats())

    try:
        base = await timed(lambda n: upstream(requests[n], ctx()), calls)
        miss = await timed(lambda n: cache(requests[n], ctx(), upstream), calls)  # look up, store
        hit = await timed(lambda n: cache(requests[n], ctx(), upstream), calls)
    finally:
        await kv.aclose()
    b = statistics.median(base)
    return {
        "miss_p50_us": pct(miss, 0.5) - b,
        "miss_p99_us": pct(miss, 0.99) - b,
        "hit_p50_us": pct(hit, 0.5) - b,
        "hit_p99_us": pct(hit, 0.99) - b,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    urls = {"memory": "memory://"} | ({} if args.no_redis else {"redis": args.redis})
    print(
        f"{'store':8} {'miss p50':>10} {'miss p99':>10} {'hit p50':>10} {'hit p99':>10}  (µs added per call)"
    )
    for name, url in urls.items():
        r = await measure(url, args.calls)
        figures = (r["miss_p50_us"], r["miss_p99_us"], r["hit_p50_us"], r["hit_p99_us"])
        print(f"{name:8} " + " ".join(f"{x:10.1f}" for x in figures))


if __name__ == "__main__":
    asyncio.run(main())
