from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import Conflict, UnprocessableEntity, UpstreamError
from llmrelay.policies.idempotency import Idempotency
from llmrelay.service import Request, Result
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, Usage, text_message

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hi"),))


class Upstream:
    """A fake ``call_next`` that counts calls and can be held, failed or streamed."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        if self.fail:
            raise UpstreamError("boom")
        assert isinstance(request, ChatRequest)
        if request.stream:
            return await ChatStream.open_chunks(self._chunks(), id="s1", model="m", created=1, provider="p")
        return ChatResponse(
            id=f"r{self.calls}", model="m", created=1, message=text_message("assistant", "ok")
        )

    async def _chunks(self) -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        yield ChatChunk(text="b", finish_reason="stop")
        yield ChatChunk(usage=Usage(input_tokens=1, output_tokens=2))


def ctx(clock: FakeClock, key: str = "tenant:k1") -> Context:
    return Context(clock=clock, idempotency_key=key)


@pytest.fixture(params=["memory", "sqlite"])
async def kv(request: pytest.FixtureRequest, tmp_path: Path) -> KV:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'idem.db'}"
    store = open_kv(url, FakeClock())
    await store.open()
    return store


async def test_replays_without_calling_again(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    policy = Idempotency(kv, clock)
    first = await policy(REQUEST, ctx(clock), upstream)
    second = await policy(REQUEST, ctx(clock), upstream)
    assert isinstance(first, ChatResponse) and isinstance(second, ChatResponse)
    assert upstream.calls == 1
    assert second.id == first.id and second.replayed and not first.replayed
    other = await policy(REQUEST, ctx(clock, "tenant:k2"), upstream)
    assert upstream.calls == 2 and not other.replayed  # type: ignore[union-attr]


async def test_no_key_passes_through(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    policy = Idempotency(kv, clock)
    await policy(REQUEST, Context(clock=clock), upstream)
    await policy(REQUEST, Context(clock=clock), upstream)
    assert upstream.calls == 2


async def test_same_key_other_body_is_422(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    policy = Idempotency(kv, clock)
    await policy(REQUEST, ctx(clock), upstream)
    changed = ChatRequest(model="m", messages=(text_message("user", "other"),))
    with pytest.raises(UnprocessableEntity):
        await policy(changed, ctx(clock), upstream)


async def test_concurrent_duplicates_join_the_first_call(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    upstream.gate.clear()
    policy = Idempotency(kv, clock)
    calls = [asyncio.ensure_future(policy(REQUEST, ctx(clock), upstream)) for _ in range(5)]
    await upstream.entered.wait()
    upstream.gate.set()
    results = await asyncio.gather(*calls)
    assert upstream.calls == 1
    assert {r.id for r in results if isinstance(r, ChatResponse)} == {"r1"}


async def test_another_replica_in_flight_times_out_with_409(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    upstream.gate.clear()
    first = Idempotency(kv, clock, wait=5)
    second = Idempotency(kv, clock, wait=5)  # another replica: shares only the store
    running = asyncio.ensure_future(first(REQUEST, ctx(clock), upstream))
    await upstream.entered.wait()
    with pytest.raises(Conflict):
        await second(REQUEST, ctx(clock), upstream)
    assert sum(clock.sleeps) >= 5
    upstream.gate.set()
    await running
    replay = await second(REQUEST, ctx(clock), upstream)
    assert isinstance(replay, ChatResponse) and replay.replayed and upstream.calls == 1


async def test_failures_are_not_stored(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    policy = Idempotency(kv, clock)
    upstream.fail = True
    with pytest.raises(UpstreamError):
        await policy(REQUEST, ctx(clock), upstream)
    upstream.fail = False
    result = await policy(REQUEST, ctx(clock), upstream)
    assert isinstance(result, ChatResponse) and not result.replayed and upstream.calls == 2


async def test_streams_are_stored_and_replayed_as_streams(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    policy = Idempotency(kv, clock)
    streamed = ChatRequest(model="m", messages=REQUEST.messages, stream=True)
    first = await policy(streamed, ctx(clock), upstream)
    assert isinstance(first, ChatStream)
    original = [c async for c in first]
    second = await policy(streamed, ctx(clock), upstream)
    assert isinstance(second, ChatStream) and second.replayed
    assert [c async for c in second] == original
    assert second.final().text == "ab" and second.id == "s1"
    assert upstream.calls == 1


async def test_a_stream_closed_early_frees_the_key(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    policy = Idempotency(kv, clock)
    streamed = ChatRequest(model="m", messages=REQUEST.messages, stream=True)
    first = await policy(streamed, ctx(clock), upstream)
    assert isinstance(first, ChatStream)
    await anext(first)
    await first.aclose()
    again = await policy(streamed, ctx(clock), upstream)
    assert isinstance(again, ChatStream) and not again.replayed and upstream.calls == 2
