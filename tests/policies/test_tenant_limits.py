"""Tenant limits in the request scope: requests, concurrency and tokens per key, user, team and
tier, on a fake clock with a fake ``call_next`` (the server's headers are in tests/e2e)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import msgspec
import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import CallStats, Context
from llmrelay.errors import PermissionDenied, RateLimited, UpstreamError
from llmrelay.policies.request_limit import RequestLimit
from llmrelay.policies.tenants import Tenancy, TierConfig
from llmrelay.policies.token_limit import TokenLimit
from llmrelay.pricing.tokens import estimate_input_tokens, output_bound
from llmrelay.service import Request, Result, compose
from llmrelay.stores.rates import Decision, Rate, Take, decide
from llmrelay.stores.rates_memory import MemoryRateLimits
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, Usage, text_message

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hello there"),), max_tokens=100)
ESTIMATE = estimate_input_tokens(REQUEST) + output_bound(REQUEST)


class Upstream:
    """A fake ``call_next``: answers with ``usage``, streams, fails or waits on a gate."""

    def __init__(self) -> None:
        self.usage = Usage(input_tokens=10, output_tokens=20)
        self.calls = 0
        self.fail = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        if self.fail:
            raise UpstreamError("boom")
        assert isinstance(request, ChatRequest)
        if request.stream:
            return await ChatStream.open_chunks(self._chunks(), id="s", model="m", created=1, provider="p")
        return ChatResponse(
            id="r", model="m", created=1, message=text_message("assistant", "ok"), usage=self.usage
        )

    async def _chunks(self) -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        yield ChatChunk(text="b", finish_reason="stop")
        yield ChatChunk(usage=self.usage)


class CountingStore(MemoryRateLimits):
    """The memory store, counting the calls a request makes (each one a round trip on Redis)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.calls: list[str] = []

    async def take(self, takes: Sequence[Take], **held: Any) -> list[Decision]:
        self.calls.append("take")
        return await super().take(takes, **held)

    async def adjust(self, takes: Sequence[Take]) -> None:
        self.calls.append("adjust")
        await super().adjust(takes)

    async def leave(self, keys: Sequence[str], lease: str, *, adjust: Sequence[Take] = ()) -> None:
        self.calls.append("leave")
        await super().leave(keys, lease, adjust=adjust)


def build(
    tiers: Mapping[str, Any], *, clock: FakeClock, trusted: bool = False, cached: bool = False
) -> tuple[Any, CountingStore, Upstream]:
    """Both tenant-limit policies as the builder stacks them (the cache between them is not
    needed here: ``cached`` only says which of the two takes the tokens)."""
    tenancy = Tenancy(
        {name: msgspec.convert(t, TierConfig) for name, t in tiers.items()},
        alias_of=lambda name: name,
        trusts_user=lambda name: trusted,
    )
    store = CountingStore(clock)
    upstream = Upstream()

    def is_cached(model: str) -> bool:
        return cached

    service = compose(
        [RequestLimit(tenancy, store, cached=is_cached), TokenLimit(tenancy, store, cached=is_cached)],
        upstream,
    )
    return service, store, upstream


def ctx(clock: FakeClock, **fields: Any) -> Context:
    return Context(clock=clock, stats=CallStats(), **{"principal": "key_a", "tier": "free", **fields})


async def test_rpm_per_key_then_refill() -> None:
    clock = FakeClock()
    service, _, upstream = build({"free": {"rpm": 2}}, clock=clock)
    first = ctx(clock)
    await service(REQUEST, first)
    assert first.stats is not None and first.stats.requests is not None
    assert (first.stats.requests.limit, first.stats.requests.remaining) == (2, 1)
    await service(REQUEST, ctx(clock))
    with pytest.raises(RateLimited) as caught:
        await service(REQUEST, ctx(clock))
    assert caught.value.retry_after == pytest.approx(30.0)
    assert "2 requests per minute of this key (tier 'free')" in caught.value.message
    await service(REQUEST, ctx(clock, principal="key_b"))  # another key counts on its own
    clock.advance(30)
    await service(REQUEST, ctx(clock))
    assert upstream.calls == 4


async def test_user_team_and_tier_counters() -> None:
    clock = FakeClock()
    tiers = {"free": {"user": {"rpm": 1}, "team": {"rpm": 2}, "total": {"rpm": 3}}}
    service, _, _ = build(tiers, clock=clock)
    await service(REQUEST, ctx(clock, principal="k1", user="ann", team="t1"))
    with pytest.raises(RateLimited, match="user"):
        await service(REQUEST, ctx(clock, principal="k2", user="ann", team="t1"))  # same user, other key
    await service(REQUEST, ctx(clock, principal="k2", user="bob", team="t1"))
    with pytest.raises(RateLimited, match="team"):
        await service(REQUEST, ctx(clock, principal="k3", user="cy", team="t1"))
    await service(REQUEST, ctx(clock, principal="k3", user="cy", team="t2"))
    with pytest.raises(RateLimited, match="tier"):
        await service(REQUEST, ctx(clock, principal="k4", user="dee", team="t3"))


async def test_the_request_user_field_counts_only_where_trusted() -> None:
    clock = FakeClock()
    tiers = {"free": {"user": {"rpm": 1}}}
    request = msgspec.structs.replace(REQUEST, user="end-user-1")
    other = msgspec.structs.replace(REQUEST, user="end-user-2")
    untrusted, _, _ = build(tiers, clock=clock)
    await untrusted(request, ctx(clock, user="app"))
    with pytest.raises(RateLimited):  # the claimed end user changes nothing: the key's user counts
        await untrusted(other, ctx(clock, user="app"))
    trusted, _, _ = build(tiers, clock=clock, trusted=True)
    await trusted(request, ctx(clock, user="app"))
    await trusted(other, ctx(clock, user="app"))
    with pytest.raises(RateLimited):
        await trusted(request, ctx(clock, user="app"))


async def test_per_model_limits_within_a_tier() -> None:
    clock = FakeClock()
    service, _, _ = build({"free": {"rpm": 10, "models": {"m": {"rpm": 1}}}}, clock=clock)
    await service(REQUEST, ctx(clock))
    with pytest.raises(RateLimited, match="for 'm'"):
        await service(REQUEST, ctx(clock))
    await service(msgspec.structs.replace(REQUEST, model="other"), ctx(clock))


async def test_default_tier_and_unknown_tier() -> None:
    clock = FakeClock()
    service, _, _ = build({"default": {"rpm": 1}}, clock=clock)
    await service(REQUEST, ctx(clock, tier=None))
    with pytest.raises(RateLimited):
        await service(REQUEST, ctx(clock, tier=None))
    with pytest.raises(PermissionDenied, match="'gold' is not configured"):
        await service(REQUEST, ctx(clock, tier="gold"))
    no_default, _, upstream = build({"free": {"rpm": 1}}, clock=clock)
    for _ in range(3):
        await no_default(REQUEST, ctx(clock, tier=None))  # no tier, no default: unlimited
    assert upstream.calls == 3


async def test_concurrency_is_released_on_success_failure_and_cancellation() -> None:
    clock = FakeClock()
    service, store, upstream = build({"free": {"concurrent": 1}}, clock=clock)
    upstream.gate.clear()
    held = asyncio.create_task(service(REQUEST, ctx(clock)))
    await upstream.entered.wait()
    with pytest.raises(RateLimited, match="concurrent"):
        await service(REQUEST, ctx(clock))
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    upstream.gate.set()
    await service(REQUEST, ctx(clock))  # the cancelled one gave its slot back
    upstream.fail = True
    with pytest.raises(UpstreamError):
        await service(REQUEST, ctx(clock))
    upstream.fail = False
    await service(REQUEST, ctx(clock))
    assert store._leases == {}


async def test_a_stream_holds_its_slot_until_it_ends() -> None:
    clock = FakeClock()
    service, _, _ = build({"free": {"concurrent": 1}}, clock=clock)
    stream = await service(msgspec.structs.replace(REQUEST, stream=True), ctx(clock))
    assert isinstance(stream, ChatStream)
    with pytest.raises(RateLimited):
        await service(REQUEST, ctx(clock))
    await stream.aclose()  # closed before its end: the slot is free again
    await service(REQUEST, ctx(clock))


async def test_queue_waits_for_room_instead_of_refusing() -> None:
    clock = FakeClock()
    service, _, upstream = build({"free": {"rpm": 1, "queue": 90}}, clock=clock)
    await service(REQUEST, ctx(clock))
    await service(REQUEST, ctx(clock))  # waited 60 s on the fake clock
    assert clock.sleeps == [pytest.approx(60.0)]
    with pytest.raises(RateLimited):  # the deadline comes before the room
        await service(REQUEST, ctx(clock).with_timeout(10))
    assert upstream.calls == 2


async def test_queue_is_first_come_first_served() -> None:
    clock = FakeClock()
    service, _, upstream = build({"free": {"concurrent": 1, "queue": 3600}}, clock=clock)
    upstream.gate.clear()
    order: list[str] = []

    async def call(name: str) -> None:
        await service(REQUEST, ctx(clock))
        order.append(name)

    first = asyncio.create_task(call("first"))
    await upstream.entered.wait()
    waiters = []
    for name in ("second", "third", "fourth"):
        waiters.append(asyncio.create_task(call(name)))
        await asyncio.sleep(0)  # let each reach the queue in turn
    upstream.gate.set()
    await asyncio.gather(first, *waiters)
    assert order == ["first", "second", "third", "fourth"]


def tokens_left(store: MemoryRateLimits, key: str, tpm: int) -> int:
    return decide(store._tats.get(key, 0.0), store._clock.now(), 0, Rate(tpm, 60))[1].remaining


@pytest.mark.parametrize("cached", [False, True])
async def test_tokens_reserve_the_estimate_and_reconcile_to_usage(cached: bool) -> None:
    clock = FakeClock()
    service, store, upstream = build({"free": {"tpm": 1000}}, clock=clock, cached=cached)
    upstream.gate.clear()
    call = asyncio.create_task(service(REQUEST, ctx(clock)))
    await upstream.entered.wait()
    assert tokens_left(store, "free:key:key_a:t", 1000) == 1000 - ESTIMATE  # reserved
    upstream.gate.set()
    await call
    assert tokens_left(store, "free:key:key_a:t", 1000) == 1000 - 30  # reconciled to 10 + 20


@pytest.mark.parametrize("cached", [False, True])
async def test_tokens_of_a_stream_reconcile_at_its_end_and_release_when_cut(cached: bool) -> None:
    clock = FakeClock()
    service, store, _ = build({"free": {"tpm": 1000}}, clock=clock, cached=cached)
    streamed = msgspec.structs.replace(REQUEST, stream=True)
    stream = await service(streamed, ctx(clock))
    assert isinstance(stream, ChatStream)
    assert tokens_left(store, "free:key:key_a:t", 1000) == 1000 - ESTIMATE
    await stream.collect()
    assert tokens_left(store, "free:key:key_a:t", 1000) == 970
    cut = await service(streamed, ctx(clock, principal="key_b"))
    assert isinstance(cut, ChatStream)
    await cut.aclose()  # cancelled by its reader: the reservation goes back
    assert tokens_left(store, "free:key:key_b:t", 1000) == 1000


@pytest.mark.parametrize("cached", [False, True])
async def test_tokens_are_released_on_failure(cached: bool) -> None:
    clock = FakeClock()
    service, store, upstream = build({"free": {"tpm": 1000}}, clock=clock, cached=cached)
    upstream.fail = True
    with pytest.raises(UpstreamError):
        await service(REQUEST, ctx(clock))
    assert tokens_left(store, "free:key:key_a:t", 1000) == 1000


@pytest.mark.parametrize("cached", [False, True])
async def test_usage_above_the_estimate_is_charged(cached: bool) -> None:
    clock = FakeClock()
    service, store, upstream = build({"free": {"tpm": 10_000}}, clock=clock, cached=cached)
    upstream.usage = Usage(input_tokens=900, output_tokens=2000)
    await service(REQUEST, ctx(clock))
    assert tokens_left(store, "free:key:key_a:t", 10_000) == 10_000 - 2900


@pytest.mark.parametrize("cached", [False, True])
async def test_a_request_that_can_never_fit_says_so(cached: bool) -> None:
    clock = FakeClock()
    service, store, upstream = build({"free": {"tpm": 50}}, clock=clock, cached=cached)
    with pytest.raises(RateLimited, match="can never be admitted") as caught:
        await service(REQUEST, ctx(clock))
    assert caught.value.retry_after is None
    assert upstream.calls == 0
    # and the request it counted against rpm-wise is not the point: tokens were never taken
    assert (await store.peek([Take("free:key:key_a:t", 0, Rate(50, 60))]))[0].remaining == 50


async def test_headers_report_the_limit_nearest_exhaustion() -> None:
    clock = FakeClock()
    service, _, _ = build({"free": {"rpm": 100, "user": {"rpm": 2}}}, clock=clock)
    first = ctx(clock, user="ann")
    await service(REQUEST, first)
    assert first.stats is not None and first.stats.requests is not None
    assert (first.stats.requests.limit, first.stats.requests.remaining) == (2, 1)
    assert first.stats.tokens is None


@pytest.mark.parametrize("cached", [False, True])
async def test_an_answer_without_usage_keeps_the_reservation(cached: bool) -> None:
    clock = FakeClock()
    service, store, upstream = build({"free": {"tpm": 1000}}, clock=clock, cached=cached)
    upstream.usage = Usage()
    await service(REQUEST, ctx(clock))
    assert tokens_left(store, "free:key:key_a:t", 1000) == 1000 - ESTIMATE


@pytest.mark.parametrize("cached", [False, True])
async def test_a_queued_tier_of_tokens_only_counts_no_requests(cached: bool) -> None:
    clock = FakeClock()
    service, _, upstream = build({"free": {"tpm": 100_000, "queue": 5}}, clock=clock, cached=cached)
    first = ctx(clock)
    await service(REQUEST, first)
    assert first.stats is not None and first.stats.requests is None and first.stats.tokens is not None
    assert upstream.calls == 1


@pytest.mark.parametrize(
    ("cached", "calls"),
    [
        (False, ["take", "leave"]),  # one round trip before the call, one (in the background) after
        (True, ["take", "take", "adjust", "leave"]),  # tokens after the cache: a hit takes none
    ],
)
async def test_store_calls_per_request(cached: bool, calls: list[str]) -> None:
    clock = FakeClock()
    tiers = {"free": {"rpm": 100, "tpm": 10_000, "concurrent": 5}}
    service, store, _ = build(tiers, clock=clock, cached=cached)
    first = ctx(clock)
    await service(REQUEST, first)
    assert store.calls == calls
    assert first.stats is not None and first.stats.requests is not None and first.stats.tokens is not None
    assert (first.stats.requests.remaining, first.stats.tokens.remaining) == (99, 10_000 - ESTIMATE)
    assert tokens_left(store, "free:key:key_a:t", 10_000) == 10_000 - 30  # reconciled either way
    assert store._leases == {}


async def test_a_token_refusal_in_the_one_call_counts_no_request() -> None:
    clock = FakeClock()
    service, store, upstream = build({"free": {"rpm": 100, "tpm": ESTIMATE + 10}}, clock=clock)
    await service(REQUEST, ctx(clock))
    with pytest.raises(RateLimited, match="tokens per minute"):
        await service(REQUEST, ctx(clock))
    assert (await store.peek([Take("free:key:key_a:r", 0, Rate(100, 60))]))[0].remaining == 99
    assert upstream.calls == 1
