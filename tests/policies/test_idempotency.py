from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock, SystemClock
from llmrelay.context import Context
from llmrelay.errors import Conflict, RelayError, UnprocessableEntity, UpstreamError
from llmrelay.policies.idempotency import Idempotency
from llmrelay.service import Request, Result
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, Usage, text_message
from tests.services import require

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
async def kv(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KV]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'idem.db'}"
    store = open_kv(url, FakeClock())
    await store.open()
    yield store
    await store.aclose()


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


class FailingSet:
    """A KV whose ``set`` fails (a store outage while keeping an answer); the rest works."""

    def __init__(self, inner: KV) -> None:
        self.inner = inner

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        raise ConnectionError("store down")

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return await self.inner.set_if_absent(key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_store_failure_while_keeping_frees_the_key_and_releases_joiners(kv: KV, stream: bool) -> None:
    clock, upstream = FakeClock(), Upstream()
    upstream.gate.clear()
    policy = Idempotency(FailingSet(kv), clock, wait=5)  # type: ignore[arg-type]
    request = ChatRequest(model="m", messages=REQUEST.messages, stream=stream)
    first = asyncio.ensure_future(policy(request, ctx(clock), upstream))
    await upstream.entered.wait()
    joiner = asyncio.ensure_future(policy(request, ctx(clock), upstream))
    await asyncio.sleep(0)
    upstream.gate.set()
    result = await first
    if isinstance(result, ChatStream):
        await result.collect()
    joined = await joiner  # released with the answer in hand, not left waiting forever
    if isinstance(joined, ChatStream):
        assert (await joined.collect()).text == "ab"
    assert not policy._inflight
    assert await kv.get("idem:tenant:k1") is None  # the claim was freed: a later duplicate runs again
    assert upstream.calls == 1


async def test_a_stream_closed_before_it_was_read_frees_the_key_and_its_joiners(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    policy = Idempotency(kv, clock, wait=5)
    streamed = ChatRequest(model="m", messages=REQUEST.messages, stream=True)
    first = await policy(streamed, ctx(clock), upstream)
    assert isinstance(first, ChatStream)
    joiner = asyncio.ensure_future(policy(streamed, ctx(clock), upstream))
    await asyncio.sleep(0)
    await first.aclose()
    again = await joiner  # the joiner takes the freed key and calls itself
    assert isinstance(again, ChatStream) and not again.replayed
    await again.collect()
    assert upstream.calls == 2 and not policy._inflight


async def test_a_joiner_waits_at_most_wait_seconds(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    upstream.gate.clear()
    policy = Idempotency(kv, clock, wait=3)
    first = asyncio.ensure_future(policy(REQUEST, ctx(clock), upstream))
    await upstream.entered.wait()
    joiner = asyncio.ensure_future(policy(REQUEST, ctx(clock), upstream))
    await asyncio.sleep(0)
    clock.advance(3)
    with pytest.raises(Conflict):
        await joiner
    assert not first.done()  # the joiner giving up did not cancel the first call (shielded)
    upstream.gate.set()
    assert isinstance(await first, ChatResponse)


async def test_a_joiner_with_another_body_is_422_at_once(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    upstream.gate.clear()
    policy = Idempotency(kv, clock)
    first = asyncio.ensure_future(policy(REQUEST, ctx(clock), upstream))
    await upstream.entered.wait()
    changed = ChatRequest(model="m", messages=(text_message("user", "other"),))
    with pytest.raises(UnprocessableEntity):
        await policy(changed, ctx(clock), upstream)
    upstream.gate.set()
    await first


async def test_a_cancelled_joiner_cancels_neither_the_first_call_nor_the_other_joiners(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    upstream.gate.clear()
    policy = Idempotency(kv, clock)
    first = asyncio.ensure_future(policy(REQUEST, ctx(clock), upstream))
    await upstream.entered.wait()
    leaving = asyncio.ensure_future(policy(REQUEST, ctx(clock), upstream))
    staying = asyncio.ensure_future(policy(REQUEST, ctx(clock), upstream))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    upstream.gate.set()
    result = await first
    assert isinstance(result, ChatResponse) and not result.replayed
    joined = await staying  # the shared answer was not cancelled with the joiner that left
    assert isinstance(joined, ChatResponse) and joined.id == result.id and joined.replayed
    assert upstream.calls == 1


class CountingReads:
    """Passes through to a KV; sets ``polled`` once ``target`` reads have been made."""

    def __init__(self, inner: KV, target: int) -> None:
        self.inner = inner
        self.reads = 0
        self.target = target
        self.polled = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        value = await self.inner.get(key)
        self.reads += 1
        if self.reads >= self.target:
            self.polled.set()
        return value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.inner.set(key, value, ttl=ttl)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        return await self.inner.set_if_absent(key, value, ttl=ttl)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


async def test_real_concurrency_across_two_instances_sharing_redis() -> None:
    """Two replicas (two policies, one Redis): 20 concurrent duplicates make one upstream call."""
    require(6379, "Redis")
    store = open_kv("redis://127.0.0.1:6379/0", FakeClock())
    await store.open()
    try:
        clock, upstream = SystemClock(), Upstream()
        upstream.gate.clear()
        # Replica B's ten duplicates each read the pending claim before the first call may finish.
        replica_b_store = CountingReads(store, target=10)
        replicas = [Idempotency(store, clock, wait=10), Idempotency(replica_b_store, clock, wait=10)]  # type: ignore[arg-type]
        key = f"tenant:{uuid.uuid4().hex}"

        def call(i: int) -> asyncio.Future[Result]:
            return asyncio.ensure_future(
                replicas[i % 2](REQUEST, Context(clock=clock, idempotency_key=key), upstream)
            )

        calls = [call(i) for i in range(20)]
        await upstream.entered.wait()
        await replica_b_store.polled.wait()
        upstream.gate.set()
        results = await asyncio.gather(*calls)
        assert upstream.calls == 1
        assert {r.id for r in results if isinstance(r, ChatResponse)} == {"r1"}
        assert sum(1 for r in results if isinstance(r, ChatResponse) and not r.replayed) == 1
    finally:
        await store.aclose()


class ClaimFails(FailingSet):
    """A store that reads but cannot write (a Redis that went read-only, a full disk)."""

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        raise OSError("read-only")


async def test_an_unreachable_store_is_a_503_and_nothing_runs() -> None:
    """A real Redis client against a port nobody listens on: the lookup fails, the caller gets a
    503 it may retry, and the call does not run unguarded (it might be a duplicate)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    store = open_kv(f"redis://127.0.0.1:{port}/0", SystemClock(), namespace="idem", timeout=0.5)
    await store.open()
    clock, upstream = FakeClock(), Upstream()
    try:
        with pytest.raises(RelayError) as caught:
            await Idempotency(store, clock)(REQUEST, ctx(clock), upstream)
    finally:
        await store.aclose()
    assert caught.value.status == 503 and caught.value.code == "idempotency_store_unavailable"
    assert str(port) not in caught.value.message
    assert upstream.calls == 0


async def test_a_claim_the_store_refuses_is_a_503(kv: KV) -> None:
    clock, upstream = FakeClock(), Upstream()
    with pytest.raises(RelayError) as caught:
        await Idempotency(ClaimFails(kv), clock)(REQUEST, ctx(clock), upstream)  # type: ignore[arg-type]
    assert caught.value.code == "idempotency_store_unavailable" and upstream.calls == 0
    # Without a key the policy never touches the store: the call runs.
    assert isinstance(
        await Idempotency(ClaimFails(kv), clock)(REQUEST, Context(clock=clock), upstream), ChatResponse
    )  # type: ignore[arg-type]
