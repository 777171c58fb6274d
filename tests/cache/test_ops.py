"""Cache operations on the policy: per-alias stats, generation-based clear on every KV backend
(two processes sharing Redis or SQLite), and storing a given answer (warm)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from llmrelay.cache.generations import Generations
from llmrelay.cache.settings import CacheConfig
from llmrelay.clock import FakeClock
from llmrelay.context import CallStats, Context
from llmrelay.errors import NotFound, UpstreamError
from llmrelay.policies.cache import AliasCache, Cache
from llmrelay.service import Request, Result
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from llmrelay.stores.memory import MemoryKV
from llmrelay.types import ChatRequest, ChatResponse, Usage, text_message
from tests.services import require

USAGE = Usage(input_tokens=100, output_tokens=50)


def request(text: str = "hi", model: str = "a") -> ChatRequest:
    return ChatRequest(model=model, messages=(text_message("user", text),))


class Upstream:
    def __init__(self) -> None:
        self.calls = 0
        self.fail: Exception | None = None

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return ChatResponse(
            id=f"r{self.calls}",
            model="m",
            created=1,
            message=text_message("assistant", f"answer {self.calls}"),
            usage=USAGE,
            target="t",
        )


def policy(kv: KV, clock: FakeClock, **settings: object) -> Cache:
    config = msgspec.convert(settings, CacheConfig)
    aliases = {name: AliasCache(name, config) for name in ("a", "b")}
    return Cache(
        kv,
        clock,
        settings_for=aliases.get,
        aliases=list(aliases.values()),
        cost=lambda target, usage: usage.total_tokens / 1e6,
    )


def ctx(clock: FakeClock, **fields: object) -> Context:
    return Context(clock=clock, stats=CallStats(), **{"principal": "k", **fields})  # type: ignore[arg-type]


async def outcome(
    cache: Cache, clock: FakeClock, upstream: Upstream, req: ChatRequest, **fields: object
) -> str:
    c = ctx(clock, **fields)
    await cache(req, c, upstream)
    assert c.stats is not None and c.stats.cache is not None
    return c.stats.cache


async def test_stats_count_every_outcome_and_what_hits_saved() -> None:
    clock = FakeClock()
    cache, upstream = policy(MemoryKV(clock), clock, ttl=10, stale_if_error=100), Upstream()
    assert await outcome(cache, clock, upstream, request()) == "miss"
    assert await outcome(cache, clock, upstream, request()) == "hit"
    assert await outcome(cache, clock, upstream, request(), cache_control="no-store") == "bypass"
    clock.advance(20)
    upstream.fail = UpstreamError("down")
    assert await outcome(cache, clock, upstream, request()) == "stale"
    with pytest.raises(UpstreamError):
        await cache(request("new"), ctx(clock), upstream)  # a failed miss is still a miss
    stats = cache.stats()["aliases"]
    assert stats["a"] == {
        "hits": 1,
        "semantic_hits": 0,
        "misses": 2,
        "stale": 1,
        "bypass": 1,
        "hit_rate": 0.5,
        "tokens_saved": 300,
        "cost_saved": pytest.approx(0.0003),
    }
    assert stats["b"]["misses"] == 0 and stats["b"]["hit_rate"] is None


async def test_clear_one_alias_leaves_the_others() -> None:
    clock = FakeClock()
    cache, upstream = policy(MemoryKV(clock), clock), Upstream()
    for model in ("a", "b"):
        await cache(request(model=model), ctx(clock), upstream)
    assert await cache.clear("a") == "a"
    assert await outcome(cache, clock, upstream, request(model="a")) == "miss"
    assert await outcome(cache, clock, upstream, request(model="b")) == "hit"
    assert await cache.clear(None) is None
    assert await outcome(cache, clock, upstream, request(model="b")) == "miss"
    with pytest.raises(NotFound):
        await cache.clear("uncached")


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "redis":
        require(6379, "Redis")
        yield "redis://127.0.0.1:6379/0"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cache.db'}"
    else:
        yield "memory://"


async def test_clear_is_one_write_and_reaches_other_processes_within_the_refresh(shared_url: str) -> None:
    clock = FakeClock()
    namespace = "t" + uuid.uuid4().hex[:16]
    one_kv = open_kv(shared_url, clock, namespace=namespace)
    # In memory "another process" cannot share the store: the same instance stands in for it.
    two_kv = one_kv if shared_url == "memory://" else open_kv(shared_url, clock, namespace=namespace)
    for kv in {id(one_kv): one_kv, id(two_kv): two_kv}.values():
        await kv.open()
    try:
        one, two, upstream = policy(one_kv, clock), policy(two_kv, clock), Upstream()
        await one(request(), ctx(clock), upstream)
        assert await outcome(two, clock, upstream, request()) == "hit"
        writes: list[str] = []
        real_set = one_kv.set

        async def counting_set(key: str, value: bytes, *, ttl: float | None = None) -> None:
            writes.append(key)
            await real_set(key, value, ttl=ttl)

        one_kv.set = counting_set  # type: ignore[method-assign]
        await one.clear("a")
        one_kv.set = real_set  # type: ignore[method-assign]
        assert writes == ["gen:a"]  # O(1): one write, no scan, whatever the number of entries
        assert await outcome(one, clock, upstream, request()) == "miss"  # at once where cleared
        clock.advance(1.0)
        calls = upstream.calls
        assert await outcome(two, clock, upstream, request()) == "hit"  # the new generation's entry
        assert upstream.calls == calls
        await one.clear(None)
        clock.advance(1.0)
        assert await outcome(two, clock, upstream, request()) == "miss"
    finally:
        for kv in {id(one_kv): one_kv, id(two_kv): two_kv}.values():
            await kv.aclose()


async def test_a_clear_during_a_generation_read_is_not_overwritten_by_the_old_value() -> None:
    clock = FakeClock()
    reading, release = asyncio.Event(), asyncio.Event()

    class SlowKV(MemoryKV):
        async def get(self, key: str) -> bytes | None:
            if key == "gen:*" and not reading.is_set():
                value = await super().get(key)  # read before the clear: the old token
                reading.set()
                await release.wait()
                return value
            return await super().get(key)

    generations = Generations(SlowKV(clock), clock)
    before = asyncio.create_task(generations.of("a"))
    await reading.wait()  # reading gen:* (the namespace's, read first)
    await generations.clear(None)
    after = await generations.of("a")
    release.set()
    assert await before == after
    assert await generations.of("a") == after != "0.0"


async def test_a_store_outage_while_reading_the_generation_is_no_failed_request() -> None:
    clock = FakeClock()

    class DownKV(MemoryKV):
        async def get(self, key: str) -> bytes | None:
            raise ConnectionError("down")

        async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
            raise ConnectionError("down")

    cache, upstream = policy(DownKV(clock), clock), Upstream()
    assert await outcome(cache, clock, upstream, request()) == "miss"
    with pytest.raises(ConnectionError):
        await cache.clear("a")  # the caller must know the clear did not happen


async def test_store_keeps_a_given_answer_under_the_request_key() -> None:
    clock = FakeClock()
    cache, upstream = policy(MemoryKV(clock), clock, scope="shared"), Upstream()
    given = ChatResponse(id="w", model="a", created=1, message=text_message("assistant", "forty-two"))
    assert await cache.store(request("meaning?"), ctx(clock), given)
    served = await cache(request("meaning?"), ctx(clock, principal="someone-else"), upstream)
    assert isinstance(served, ChatResponse) and served.text == "forty-two" and served.replayed
    assert upstream.calls == 0
    with pytest.raises(NotFound):
        await cache.store(request(model="uncached"), ctx(clock), given)
