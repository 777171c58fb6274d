from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import (
    CircuitOpen,
    ConnectionFailed,
    InvalidRequest,
    RelayError,
    StreamTimeout,
    UpstreamError,
)
from llmrelay.policies.breaker_state import BUCKETS, BreakerState, CircuitBreakerConfig
from llmrelay.policies.circuit_breaker import CircuitBreaker
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, text_message

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hi"),))
OK = ChatResponse(id="ok", model="m", created=0, message=text_message("assistant", "ok"))
CONFIG = CircuitBreakerConfig(
    failures=3, failure_ratio=0.5, min_calls=10, window=30, cooldown=10, half_open_probes=1
)


def test_trips_on_consecutive_failures_then_half_opens_after_cooldown() -> None:
    clock = FakeClock()
    state = BreakerState(CONFIG, clock)
    for _ in range(2):
        assert state.allow()
        state.failure()
    assert state.state == "closed"
    state.allow()
    state.failure()
    assert state.state == "open" and not state.allow()
    assert state.retry_after() == 10
    clock.advance(10)
    assert state.allow() and state.state == "half_open"
    assert not state.allow()  # one probe at a time
    state.success()
    assert state.state == "closed" and state.allow()


def test_a_failed_probe_reopens() -> None:
    clock = FakeClock()
    state = BreakerState(CONFIG, clock)
    for _ in range(3):
        state.failure()
    clock.advance(10)
    assert state.allow()
    state.failure()
    assert state.state == "open" and state.trips == 2
    clock.advance(9.9)
    assert not state.allow()


def test_trips_on_failure_ratio_over_min_calls() -> None:
    clock = FakeClock()
    state = BreakerState(CONFIG, clock)
    for i in range(1, 11):  # alternate: never 3 in a row, but 50% over 10 calls
        state.success() if i % 2 else state.failure()
    assert state.state == "open"


def test_ratio_counts_only_the_window() -> None:
    clock = FakeClock()
    state = BreakerState(CircuitBreakerConfig(failures=3, failure_ratio=0.3, min_calls=10, window=30), clock)
    for i in range(9):  # f s f s f s f s f: 5 failures, never 2 in a row
        state.success() if i % 2 else state.failure()
    clock.advance(31)  # ... and all of them leave the window
    for _ in range(9):
        state.success()
    state.failure()  # 1 of the 10 calls in the window (6 of 19 overall would be over 0.3)
    assert state.state == "closed"
    assert state.snapshot()["recent_calls"] == 10


def test_recovery_clears_the_ratio_window() -> None:
    clock = FakeClock()
    state = BreakerState(CONFIG, clock)
    for i in range(1, 11):  # 5 of 10 failed, never 3 in a row: trips on the ratio
        state.success() if i % 2 else state.failure()
    assert state.state == "open"
    clock.advance(10)  # the old calls are still inside the 30 s window
    assert state.allow()
    state.success()  # half-open probe succeeds: closed, and the window starts afresh
    assert state.state == "closed" and state.snapshot()["recent_calls"] == 0
    state.failure()  # with the old window kept, 6 of 12 would trip again
    assert state.state == "closed"
    assert state.snapshot()["recent_calls"] == 1 and state.snapshot()["recent_failures"] == 1


def test_the_window_is_bounded_and_its_running_counts_follow_expiry() -> None:
    clock = FakeClock(start=0.0)
    state = BreakerState(
        CircuitBreakerConfig(failures=10**6, failure_ratio=0.9, min_calls=10, window=30), clock
    )
    for i in range(60 * 1024):  # 60 s at 1,024 calls/s (exact in binary), one failure in four
        clock.advance(1 / 1024)
        state.failure() if i % 4 == 0 else state.success()
    assert state.state == "closed"
    assert len(state._buckets) <= BUCKETS + 1  # counters per time bucket, not one entry per call
    snapshot = state.snapshot()
    assert 28.5 * 1024 <= snapshot["recent_calls"] <= 30 * 1024  # 30 s, less at most one bucket
    assert snapshot["recent_failures"] * 4 == pytest.approx(snapshot["recent_calls"], abs=4)
    clock.advance(30)
    assert state.snapshot()["recent_calls"] == 0 and state.snapshot()["recent_failures"] == 0


def test_neutral_outcomes_free_the_probe() -> None:
    clock = FakeClock()
    state = BreakerState(CONFIG, clock)
    for _ in range(3):
        state.failure()
    clock.advance(10)
    assert state.allow()
    state.neutral()
    assert state.allow()


async def fail_with(error: RelayError) -> Result:
    raise error


async def test_policy_fails_fast_when_open_and_ignores_caller_errors() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CONFIG, clock, label="a")
    calls = 0

    async def failing(request: Request, ctx: Context) -> Result:
        nonlocal calls
        calls += 1
        raise ConnectionFailed("down")

    async def bad_request(request: Request, ctx: Context) -> Result:
        raise InvalidRequest("mine")

    for _ in range(5):
        with pytest.raises(InvalidRequest):
            await breaker(REQUEST, Context(clock=clock), bad_request)
    assert breaker.snapshot()["state"] == "closed"
    for _ in range(3):
        with pytest.raises(ConnectionFailed):
            await breaker(REQUEST, Context(clock=clock), failing)
    with pytest.raises(CircuitOpen) as info:
        await breaker(REQUEST, Context(clock=clock), failing)
    assert calls == 3 and info.value.retry_after == 10
    snapshot = breaker.snapshot()
    assert snapshot["target"] == "a" and snapshot["state"] == "open" and snapshot["trips"] == 1


async def test_shadow_mode_tracks_but_lets_calls_through(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CircuitBreakerConfig(failures=1, enforce=False), clock, label="a")

    async def failing(request: Request, ctx: Context) -> Result:
        raise UpstreamError("x")

    async def fine(request: Request, ctx: Context) -> Result:
        return OK

    with pytest.raises(UpstreamError):
        await breaker(REQUEST, Context(clock=clock), failing)
    assert breaker.snapshot()["state"] == "open"
    with caplog.at_level(logging.INFO, logger="llmrelay.circuit_breaker"):
        assert await breaker(REQUEST, Context(clock=clock), fine) is OK
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("llmrelay.circuit_breaker", logging.INFO, "shadow: circuit for a is open; letting the call through")
    ]


async def test_a_failure_after_the_commit_point_counts() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CircuitBreakerConfig(failures=1), clock, label="a")

    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        raise ConnectionFailed("dropped")

    async def streaming(request: Request, ctx: Context) -> Result:
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)

    stream = await breaker(REQUEST, Context(clock=clock), streaming)
    assert isinstance(stream, ChatStream)
    with pytest.raises(RelayError):
        async for _ in stream:
            pass
    assert breaker.snapshot()["state"] == "open"


@pytest.mark.parametrize("death", [TypeError("unserialisable extensions"), asyncio.CancelledError()])
async def test_a_probe_that_dies_with_a_foreign_exception_gives_its_slot_back(death: BaseException) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CircuitBreakerConfig(failures=1, cooldown=1), clock, label="a")

    async def failing(request: Request, ctx: Context) -> Result:
        raise UpstreamError("boom")

    async def dying(request: Request, ctx: Context) -> Result:
        raise death

    async def fine(request: Request, ctx: Context) -> Result:
        return OK

    with pytest.raises(UpstreamError):
        await breaker(REQUEST, Context(clock=clock), failing)
    clock.advance(1)
    with pytest.raises(type(death)):
        await breaker(REQUEST, Context(clock=clock), dying)  # the half-open probe
    assert breaker.state.state == "half_open" and breaker.state.probes == 0
    assert await breaker(REQUEST, Context(clock=clock), fine) is OK  # not locked out
    assert breaker.state.state == "closed"


async def test_a_stream_that_goes_silent_after_the_commit_point_counts() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(CircuitBreakerConfig(failures=1), clock, label="a")

    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        await clock.sleep(5)
        await asyncio.Event().wait()

    async def streaming(request: Request, ctx: Context) -> Result:
        stream = await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)
        stream.limit_idle(1, clock, lambda: StreamTimeout("silent"))
        return stream

    stream = await breaker(REQUEST, Context(clock=clock), streaming)
    assert isinstance(stream, ChatStream)
    with pytest.raises(StreamTimeout):
        async for _ in stream:
            pass
    assert breaker.state.state == "open"
