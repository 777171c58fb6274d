from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import CallStats, Context
from llmrelay.errors import (
    AuthenticationError,
    CircuitOpen,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    RelayError,
    StreamInterrupted,
    UnprocessableEntity,
    UpstreamError,
)
from llmrelay.policies.retry import Retry, RetryConfig
from llmrelay.policies.retry_budget import RetryBudget
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, text_message

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hi"),))
OK = ChatResponse(id="ok", model="m", created=0, message=text_message("assistant", "ok"))


class Script:
    """A fake ``call_next`` failing with the given errors in order, then answering."""

    def __init__(self, *errors: RelayError) -> None:
        self.errors = list(errors)
        self.attempts: list[int] = []

    async def __call__(self, request: Request, ctx: Context) -> Result:
        self.attempts.append(ctx.attempt)
        if self.errors:
            raise self.errors.pop(0)
        return OK


def policy(clock: FakeClock, **config: object) -> Retry:
    settings = RetryConfig(**{"base": 0.5, "cap": 8.0, **config})  # type: ignore[arg-type]
    budget = RetryBudget(clock, ratio=1.0, min_per_second=100)
    return Retry(settings, clock, budget=budget, label="t", rand=lambda: 1.0)


async def test_retries_a_5xx_then_answers() -> None:
    clock = FakeClock()
    script = Script(UpstreamError("a"), Overloaded("b"))
    stats = CallStats()
    assert await policy(clock)(REQUEST, Context(clock=clock, stats=stats), script) is OK
    assert script.attempts == [0, 1, 2]
    assert clock.sleeps == [0.5, 1.0]
    assert stats.attempts == 3


async def test_gives_up_after_max_retries() -> None:
    clock = FakeClock()
    script = Script(UpstreamError("1"), UpstreamError("2"), UpstreamError("3"))
    with pytest.raises(UpstreamError, match="3"):
        await policy(clock)(REQUEST, Context(clock=clock), script)
    assert len(script.attempts) == 3


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("x"),
        AuthenticationError("x"),
        NotFound("x"),
        UnprocessableEntity("x"),
        CircuitOpen("x"),
    ],
)
async def test_never_retries_caller_errors_or_an_open_circuit(error: RelayError) -> None:
    clock = FakeClock()
    script = Script(error)
    with pytest.raises(type(error)):
        await policy(clock)(REQUEST, Context(clock=clock), script)
    assert script.attempts == [0]


async def test_429_waits_exactly_retry_after() -> None:
    clock = FakeClock()
    script = Script(RateLimited("slow", retry_after=3))
    assert await policy(clock)(REQUEST, Context(clock=clock), script) is OK
    assert clock.sleeps == [3]


async def test_retry_after_beyond_the_cap_fails_over_instead() -> None:
    clock = FakeClock()
    script = Script(RateLimited("slow", retry_after=120))
    with pytest.raises(RateLimited):
        await policy(clock)(REQUEST, Context(clock=clock), script)
    assert clock.sleeps == []


async def test_upstream_says_do_not_retry() -> None:
    clock = FakeClock()
    script = Script(UpstreamError("x", should_retry=False))
    with pytest.raises(UpstreamError):
        await policy(clock)(REQUEST, Context(clock=clock), script)
    assert script.attempts == [0]


async def test_no_retry_past_the_deadline() -> None:
    clock = FakeClock()
    script = Script(RateLimited("slow", retry_after=5))
    ctx = Context(clock=clock).with_timeout(4)
    with pytest.raises(RateLimited):
        await policy(clock)(REQUEST, ctx, script)
    assert clock.sleeps == []


async def test_an_empty_budget_stops_retries() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.0, min_per_second=0.1)  # one retry per 10 s window
    retry = Retry(RetryConfig(), clock, budget=budget, label="t", rand=lambda: 0.0)
    assert await retry(REQUEST, Context(clock=clock), Script(UpstreamError("a"))) is OK
    script = Script(UpstreamError("b"))
    with pytest.raises(UpstreamError):
        await retry(REQUEST, Context(clock=clock), script)
    assert script.attempts == [0]


async def test_shadow_mode_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    script = Script(UpstreamError("a"))
    with caplog.at_level(logging.INFO, logger="llmrelay.retry"), pytest.raises(UpstreamError):
        await policy(clock, enforce=False)(REQUEST, Context(clock=clock), script)
    assert script.attempts == [0] and clock.sleeps == []
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("llmrelay.retry", logging.INFO, "shadow: would retry t after 0.500s (upstream_error)")
    ]


async def test_a_returned_stream_is_final() -> None:
    clock = FakeClock()
    calls = 0

    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        raise UpstreamError("dropped")

    async def call_next(request: Request, ctx: Context) -> Result:
        nonlocal calls
        calls += 1
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)

    stream = await policy(clock)(REQUEST, Context(clock=clock), call_next)
    assert isinstance(stream, ChatStream)
    await anext(stream)
    with pytest.raises(StreamInterrupted):
        await anext(stream)
    assert calls == 1
