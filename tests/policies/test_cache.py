"""The cache policy with a fake ``call_next``: hits, misses, scope, streams, TTL and LRU on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import msgspec
import pytest

from llmrelay.cache.settings import CacheConfig
from llmrelay.clock import FakeClock
from llmrelay.context import CallStats, Context
from llmrelay.errors import ConnectionFailed, InvalidRequest, StreamInterrupted, UpstreamError
from llmrelay.policies.cache import AliasCache, Cache
from llmrelay.policies.idempotency import Idempotency
from llmrelay.pricing.prices import Price
from llmrelay.service import Request, Result
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from llmrelay.stores.memory import MemoryKV
from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    Tool,
    Usage,
    text_message,
)

USAGE = Usage(input_tokens=1000, output_tokens=500)
PRICE = Price(input=2.0, output=8.0)
REQUEST = ChatRequest(
    model="m", messages=(text_message("system", "be brief"), text_message("user", "hi")), temperature=0.0
)


class Upstream:
    """A fake ``call_next``: counts calls; answers, fails or streams (optionally breaking mid-way)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: Exception | None = None
        self.finish: FinishReason = "stop"
        self.break_stream = False

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        if isinstance(request, EmbeddingRequest):
            return EmbeddingResponse(model="e", vectors=[[0.5, float(self.calls)]], usage=USAGE, target="t")
        if request.stream:
            stream = await ChatStream.open_chunks(self._chunks(), id="s", model="m", created=1, provider="p")
            stream.target = "t"
            return stream
        return ChatResponse(
            id=f"r{self.calls}",
            model="m",
            created=1,
            message=text_message("assistant", f"answer {self.calls}"),
            finish_reason=self.finish,
            usage=USAGE,
            target="t",
        )

    async def _chunks(self) -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text=f"answer {self.calls}")
        if self.break_stream:
            raise ConnectionFailed("dropped")
        yield ChatChunk(text="!", finish_reason=self.finish)
        yield ChatChunk(usage=USAGE)


def policy(kv: KV, clock: FakeClock, **settings: object) -> Cache:
    alias = AliasCache("m", msgspec.convert(settings, CacheConfig))

    def settings_for(name: str) -> AliasCache | None:
        return alias if name != "uncached" else None

    def cost(target: str | None, usage: Usage) -> float | None:
        return (usage.input_tokens * PRICE.input + usage.output_tokens * PRICE.output) / 1e6

    return Cache(kv, clock, settings_for=settings_for, aliases=[alias], cost=cost)


def ctx(clock: FakeClock, principal: str = "key-a", **fields: object) -> Context:
    return Context(clock=clock, principal=principal, stats=CallStats(), **fields)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kv(clock: FakeClock) -> MemoryKV:
    return MemoryKV(clock, namespace="cache")


async def text_of(result: Result) -> str:
    if isinstance(result, ChatStream):
        return (await result.collect()).text
    assert isinstance(result, ChatResponse)
    return result.text


async def test_identical_request_hits_and_records_the_saving(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    first_ctx, second_ctx = ctx(clock), ctx(clock)
    first = await cache(REQUEST, first_ctx, upstream)
    second = await cache(REQUEST, second_ctx, upstream)
    assert upstream.calls == 1
    assert isinstance(first, ChatResponse) and isinstance(second, ChatResponse)
    assert second.text == first.text and second.replayed and not first.replayed
    assert first_ctx.stats is not None and first_ctx.stats.cache == "miss"
    assert first_ctx.stats.cost_saved is None
    assert second_ctx.stats is not None and second_ctx.stats.cache == "hit"
    assert second_ctx.stats.cost_saved == pytest.approx(0.006)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "other"},
        {"messages": (text_message("system", "be verbose"), text_message("user", "hi"))},
        {"messages": (text_message("user", "hi"),)},
        {
            "messages": (
                text_message("system", "be brief"),
                text_message("user", "earlier"),
                text_message("assistant", "reply"),
                text_message("user", "hi"),
            )
        },
        {"temperature": 0.7},
        {"top_p": 0.5},
        {"max_tokens": 10},
        {"stop": ("END",)},
        {"seed": 7},
        {"tools": (Tool(name="lookup"),)},
        {"extensions": {"openai": {"logprobs": True}}},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_any_answer_relevant_change_misses(
    kv: MemoryKV, clock: FakeClock, change: dict[str, object]
) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    await cache(REQUEST, ctx(clock), upstream)
    changed = msgspec.structs.replace(REQUEST, **change)
    result = await cache(changed, ctx(clock), upstream)
    assert upstream.calls == 2 and isinstance(result, ChatResponse) and not result.replayed


async def test_stream_flag_and_user_do_not_change_the_key(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    await cache(REQUEST, ctx(clock), upstream)
    again = msgspec.structs.replace(REQUEST, user="someone")
    assert (await cache(again, ctx(clock), upstream)).replayed
    assert upstream.calls == 1


async def test_tenants_never_see_each_others_entries(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    await cache(REQUEST, ctx(clock, "key-a"), upstream)
    b = await cache(REQUEST, ctx(clock, "key-b"), upstream)
    assert upstream.calls == 2 and await text_of(b) == "answer 2"
    assert await text_of(await cache(REQUEST, ctx(clock, "key-a"), upstream)) == "answer 1"
    assert await text_of(await cache(REQUEST, ctx(clock, "key-b"), upstream)) == "answer 2"
    assert upstream.calls == 2


async def test_team_scope_shares_within_a_team_only(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock, scope="team"), Upstream()
    await cache(REQUEST, ctx(clock, "key-a", tags={"team": "search"}), upstream)
    assert (await cache(REQUEST, ctx(clock, "key-b", tags={"team": "search"}), upstream)).replayed
    assert not (await cache(REQUEST, ctx(clock, "key-c", tags={"team": "ads"}), upstream)).replayed
    # without a team a caller is its own tenant, never another's
    assert not (await cache(REQUEST, ctx(clock, "key-a"), upstream)).replayed
    assert upstream.calls == 3


async def test_shared_scope_serves_every_caller(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock, scope="shared"), Upstream()
    await cache(REQUEST, ctx(clock, "key-a"), upstream)
    assert (await cache(REQUEST, ctx(clock, "key-b"), upstream)).replayed
    assert upstream.calls == 1


async def test_an_alias_without_cache_is_passed_through(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    request = msgspec.structs.replace(REQUEST, model="uncached")
    c = ctx(clock)
    await cache(request, c, upstream)
    await cache(request, c, upstream)
    assert upstream.calls == 2 and c.stats is not None and c.stats.cache is None and kv.entries == 0


async def test_ttl_on_the_fake_clock(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock, ttl=60), Upstream()
    await cache(REQUEST, ctx(clock), upstream)
    clock.advance(59)
    assert (await cache(REQUEST, ctx(clock), upstream)).replayed
    clock.advance(2)
    assert not (await cache(REQUEST, ctx(clock), upstream)).replayed
    assert upstream.calls == 2


async def test_lru_evicts_the_least_recently_used(clock: FakeClock) -> None:
    kv = MemoryKV(clock, namespace="cache", max_entries=2)
    cache, upstream = policy(kv, clock), Upstream()
    a, b, c = (msgspec.structs.replace(REQUEST, seed=n) for n in (1, 2, 3))
    await cache(a, ctx(clock), upstream)
    await cache(b, ctx(clock), upstream)
    assert (await cache(a, ctx(clock), upstream)).replayed  # a is now the most recently used
    await cache(c, ctx(clock), upstream)  # evicts b
    assert (await cache(a, ctx(clock), upstream)).replayed
    assert not (await cache(b, ctx(clock), upstream)).replayed
    assert upstream.calls == 4


async def test_byte_cap_bounds_the_store(clock: FakeClock) -> None:
    kv = MemoryKV(clock, namespace="cache", max_bytes=3_000)
    cache, upstream = policy(kv, clock), Upstream()
    for n in range(20):
        await cache(msgspec.structs.replace(REQUEST, seed=n), ctx(clock), upstream)
    assert 0 < kv.size <= 3_000 and kv.entries < 20


async def test_cache_churn_leaves_idempotency_records_alone(clock: FakeClock) -> None:
    idem_kv = open_kv("memory://", clock, namespace="idem", max_entries=100)
    cache_kv = open_kv("memory://", clock, namespace="cache", max_entries=5)
    idem, cache, upstream = Idempotency(idem_kv, clock), policy(cache_kv, clock), Upstream()

    async def below_idempotency(request: Request, c: Context) -> Result:
        return await cache(request, c, upstream)

    keep = ctx(clock, idempotency_key="key-a:keep")
    await idem(REQUEST, keep, below_idempotency)
    for n in range(50):
        await cache(msgspec.structs.replace(REQUEST, seed=n), ctx(clock), upstream)
    calls = upstream.calls
    replayed = await idem(REQUEST, keep, below_idempotency)
    assert replayed.replayed and upstream.calls == calls
    assert await idem_kv.get("idem:key-a:keep") is not None


async def test_no_store_bypasses_no_cache_refreshes_max_age_bounds(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock, ttl=600), Upstream()
    bypass = ctx(clock, cache_control="no-store")
    await cache(REQUEST, bypass, upstream)
    assert bypass.stats is not None and bypass.stats.cache == "bypass" and kv.entries == 0
    await cache(REQUEST, ctx(clock), upstream)  # answer 2 stored
    refresh = ctx(clock, cache_control="no-cache")
    assert await text_of(await cache(REQUEST, refresh, upstream)) == "answer 3"
    assert refresh.stats is not None and refresh.stats.cache == "miss"
    assert await text_of(await cache(REQUEST, ctx(clock), upstream)) == "answer 3"  # refreshed
    clock.advance(30)
    assert (await cache(REQUEST, ctx(clock, cache_control="max-age=60"), upstream)).replayed
    young = await cache(REQUEST, ctx(clock, cache_control="max-age=10"), upstream)
    assert await text_of(young) == "answer 4"
    assert upstream.calls == 4


@pytest.mark.parametrize("finish", ["length", "content_filter", None])
async def test_truncated_or_filtered_answers_are_not_stored(
    kv: MemoryKV, clock: FakeClock, finish: FinishReason | None
) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    upstream.finish = finish  # type: ignore[assignment]
    await cache(REQUEST, ctx(clock), upstream)
    await cache(REQUEST, ctx(clock), upstream)
    assert upstream.calls == 2 and kv.entries == 0


async def test_errors_are_not_stored_and_raise(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    upstream.fail = UpstreamError("down")
    with pytest.raises(UpstreamError):
        await cache(REQUEST, ctx(clock), upstream)
    assert kv.entries == 0


async def test_a_streamed_miss_is_stored_and_a_hit_replays_as_a_stream(
    kv: MemoryKV, clock: FakeClock
) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    streamed = msgspec.structs.replace(REQUEST, stream=True)
    first = await cache(streamed, ctx(clock), upstream)
    assert isinstance(first, ChatStream)
    expected = await first.collect()
    hit_ctx = ctx(clock)
    second = await cache(streamed, hit_ctx, upstream)
    assert isinstance(second, ChatStream) and second.replayed
    chunks = [chunk async for chunk in second]
    assert [c.text for c in chunks if c.text] == ["answer 1!"]
    assert chunks[-1].usage == USAGE and chunks[-2].finish_reason == "stop"
    replayed = second.final()
    assert replayed.message == expected.message and replayed.usage == expected.usage
    assert second.target == "t" and hit_ctx.stats is not None and hit_ctx.stats.cache == "hit"
    # the same entry answers a unary request too
    unary = await cache(REQUEST, ctx(clock), upstream)
    assert isinstance(unary, ChatResponse) and unary.text == "answer 1!" and upstream.calls == 1


async def test_an_interrupted_stream_is_not_stored(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    upstream.break_stream = True
    stream = await cache(msgspec.structs.replace(REQUEST, stream=True), ctx(clock), upstream)
    assert isinstance(stream, ChatStream)
    with pytest.raises(StreamInterrupted):
        await stream.collect()
    assert kv.entries == 0


async def test_a_stream_closed_before_its_end_is_not_stored(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    stream = await cache(msgspec.structs.replace(REQUEST, stream=True), ctx(clock), upstream)
    assert isinstance(stream, ChatStream)
    await anext(stream)
    await stream.aclose()
    assert kv.entries == 0


async def test_a_cancelled_stream_reader_stores_nothing(kv: MemoryKV, clock: FakeClock) -> None:
    cache = policy(kv, clock)
    gate = asyncio.Event()

    async def slow(request: Request, c: Context) -> Result:
        async def chunks() -> AsyncGenerator[ChatChunk, None]:
            yield ChatChunk(text="partial")
            await gate.wait()
            yield ChatChunk(finish_reason="stop")

        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=1)

    stream = await cache(msgspec.structs.replace(REQUEST, stream=True), ctx(clock), slow)
    assert isinstance(stream, ChatStream)
    reader = asyncio.create_task(stream.collect())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert kv.entries == 0


async def test_embeddings_are_cached(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    request = EmbeddingRequest(model="e", input=("a", "b"))
    first = await cache(request, ctx(clock), upstream)
    second = await cache(request, ctx(clock), upstream)
    assert isinstance(second, EmbeddingResponse) and second.replayed
    assert isinstance(first, EmbeddingResponse) and second.vectors == first.vectors
    assert not (await cache(EmbeddingRequest(model="e", input=("a",)), ctx(clock), upstream)).replayed
    assert upstream.calls == 2


async def test_stale_if_error_serves_an_expired_entry_when_upstream_fails(
    kv: MemoryKV, clock: FakeClock
) -> None:
    cache, upstream = policy(kv, clock, ttl=60, stale_if_error=600), Upstream()
    await cache(REQUEST, ctx(clock), upstream)
    clock.advance(120)
    upstream.fail = UpstreamError("down")
    stale_ctx = ctx(clock)
    stale = await cache(REQUEST, stale_ctx, upstream)
    assert await text_of(stale) == "answer 1" and stale.replayed
    assert stale_ctx.stats is not None and stale_ctx.stats.cache == "stale"
    upstream.fail = InvalidRequest("bad")  # the caller's error is never masked
    with pytest.raises(InvalidRequest):
        await cache(REQUEST, ctx(clock), upstream)
    clock.advance(600)  # past ttl + stale_if_error
    upstream.fail = UpstreamError("down")
    with pytest.raises(UpstreamError):
        await cache(REQUEST, ctx(clock), upstream)


async def test_without_stale_if_error_an_expired_entry_is_never_served(
    kv: MemoryKV, clock: FakeClock
) -> None:
    cache, upstream = policy(kv, clock, ttl=60), Upstream()
    await cache(REQUEST, ctx(clock), upstream)
    clock.advance(61)
    upstream.fail = UpstreamError("down")
    with pytest.raises(UpstreamError):
        await cache(REQUEST, ctx(clock), upstream)


class BrokenKV(MemoryKV):
    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("store down")

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        raise ConnectionError("store down")


async def test_a_store_outage_is_a_counted_miss_never_a_failed_request(clock: FakeClock) -> None:
    cache, upstream = policy(BrokenKV(clock), clock), Upstream()
    c = ctx(clock)
    result = await cache(REQUEST, c, upstream)
    assert await text_of(result) == "answer 1" and c.stats is not None and c.stats.cache == "miss"
    assert cache.store_errors == 2


async def test_an_unreadable_entry_is_a_miss(kv: MemoryKV, clock: FakeClock) -> None:
    cache, upstream = policy(kv, clock), Upstream()
    await cache(REQUEST, ctx(clock), upstream)
    for key in list(kv._plain):
        await kv.set(key, b"not json")
    assert not (await cache(REQUEST, ctx(clock), upstream)).replayed
