"""Upstream limits per target: try-acquire before each attempt, failover on a local refusal, and
the hold when every target is limited (the server answers 429 past ``upstream_hold``; the SDK
queues until the deadline). Through the real pipeline with mock targets, on a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmrelay.classify import classify
from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from llmrelay.context import CallStats, Context
from llmrelay.errors import RateLimited, TargetLimited, UpstreamError
from llmrelay.policies.rate_limit import TargetLimit
from llmrelay.relay import Relay
from llmrelay.service import Request, Result
from llmrelay.stores.rates import Rate, Take
from llmrelay.stores.rates_memory import MemoryRateLimits
from llmrelay.types import ChatRequest, ChatResponse, Usage, text_message

HI = [{"role": "user", "content": "hi"}]


def relay(targets: list[dict[str, Any]], clock: FakeClock, *, server: bool, **alias: Any) -> Relay:
    config = load_config(
        {"models": [{"name": "m", "targets": targets, "retry": {"max_retries": 0}, **alias}]}
    )
    return Relay(config, clock=clock, server=server)


def waits(clock: FakeClock) -> list[float]:
    """The clock's sleeps that waited (the mock provider sleeps 0 for its latency)."""
    return [s for s in clock.sleeps if s > 0]


def mock(name: str, **limits: int) -> dict[str, Any]:
    return {"provider": "mock", "name": name, "options": {"text": name}, **limits}


async def test_a_limited_target_fails_over_without_calling_it() -> None:
    clock = FakeClock()
    async with relay([mock("a", rpm=1), mock("b", rpm=1)], clock, server=True) as r:
        first = await r.chat("m", HI)
        ctx = r.context(stats=CallStats())
        second = await r.send(ChatRequest(model="m", messages=(text_message("user", "hi"),)), ctx)
    assert {first.target, second.target} == {"a", "b"}
    assert ctx.stats is not None
    # the limited target was skipped before any call: one attempt, on the other target
    assert ctx.stats.targets[-1] == second.target


async def test_server_answers_429_when_the_wait_exceeds_the_hold() -> None:
    clock = FakeClock()
    async with relay([mock("a", rpm=2), mock("b", rpm=3)], clock, server=True) as r:
        for _ in range(5):
            await r.chat("m", HI)
        with pytest.raises(RateLimited) as caught:
            await r.chat("m", HI)
    assert caught.value.code == "upstream_rate_limited"
    assert caught.value.retry_after == pytest.approx(20.0)  # b refills a request every 20 s
    assert waits(clock) == []


async def test_server_holds_a_short_wait_then_succeeds() -> None:
    clock = FakeClock()
    async with relay([mock("a", rpm=60)], clock, server=True, upstream_hold=5) as r:
        for _ in range(60):
            await r.chat("m", HI)
        reply = await r.chat("m", HI)
    assert reply.target == "a"
    assert waits(clock) == [pytest.approx(1.0)]


async def test_the_hold_never_passes_the_deadline() -> None:
    clock = FakeClock()
    async with relay([mock("a", rpm=6)], clock, server=True, upstream_hold=60) as r:
        for _ in range(6):
            await r.chat("m", HI)
        with pytest.raises(RateLimited):
            await r.chat("m", HI, timeout=5)  # the wait is 10 s
    assert waits(clock) == []


async def test_the_sdk_queues_excess_calls_instead_of_failing() -> None:
    clock = FakeClock()
    async with relay([mock("a", rpm=2)], clock, server=False) as r:
        replies = [await r.chat("m", HI) for _ in range(4)]
    assert [x.text for x in replies] == ["a"] * 4
    assert waits(clock) == [pytest.approx(30.0), pytest.approx(30.0)]


class Upstream:
    def __init__(self) -> None:
        self.fail = False

    async def __call__(self, request: Request, ctx: Context) -> Result:
        if self.fail:
            raise UpstreamError("boom")
        return ChatResponse(
            id="r",
            model="m",
            created=1,
            message=text_message("assistant", "ok"),
            usage=Usage(input_tokens=5, output_tokens=5),
        )


async def test_tokens_are_tried_reconciled_and_released() -> None:
    clock = FakeClock()
    store = MemoryRateLimits(clock)
    limit = TargetLimit(store, label="t", rpm=None, tpm=2000)
    upstream = Upstream()
    ctx = Context(clock=clock)
    big = ChatRequest(model="m", messages=(text_message("user", "hi"),), max_tokens=1500)
    await limit(big, ctx, upstream)
    left = (await store.peek([Take("target:t:t", 0, Rate(2000, 60))]))[0].remaining
    assert left == 1990  # reconciled to 10 tokens
    upstream.fail = True
    with pytest.raises(UpstreamError):
        await limit(big, ctx, upstream)
    assert (await store.peek([Take("target:t:t", 0, Rate(2000, 60))]))[0].remaining == 1990
    too_big = ChatRequest(model="m", messages=(text_message("user", "word " * 3000),))
    with pytest.raises(TargetLimited) as caught:
        await limit(too_big, ctx, upstream)
    assert caught.value.retry_after is None  # never fits this target: fail over, nothing to wait for
    verdict = classify(caught.value)
    assert (verdict.retry, verdict.failover, verdict.breaker_failure) == (False, True, False)


async def test_a_refused_attempt_is_not_retried_on_the_same_target() -> None:
    clock = FakeClock()
    config = load_config(
        {"models": [{"name": "m", "targets": [mock("a", rpm=1)], "retry": {"max_retries": 3}}]}
    )
    async with Relay(config, clock=clock, server=True) as r:
        await r.chat("m", HI)
        with pytest.raises(RateLimited):
            await r.chat("m", HI)
        await asyncio.sleep(0)
    assert waits(clock) == []  # neither retried after backoff nor held (60 s > the 10 s hold)
