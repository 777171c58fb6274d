import asyncio
from collections.abc import AsyncGenerator

import pytest

from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import DeadlineExceeded
from llmrelay.policies.deadline import Deadline
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, text_message

REQUEST = ChatRequest(model="fast", messages=(text_message("user", "hi"),))
ANSWER = ChatResponse(id="x", model="m", created=0, message=text_message("assistant", "ok"))


def policy(total: float | None = 10.0) -> Deadline:
    return Deadline(lambda alias: total if alias == "fast" else None)


async def test_sets_the_configured_deadline() -> None:
    clock = FakeClock()
    seen: list[float | None] = []

    async def call_next(request: Request, ctx: Context) -> Result:
        seen.append(ctx.remaining())
        return ANSWER

    assert await policy()(REQUEST, Context(clock=clock), call_next) is ANSWER
    assert seen == [10.0]


async def test_caller_deadline_wins_over_the_configured_one() -> None:
    clock = FakeClock()
    seen: list[float | None] = []

    async def call_next(request: Request, ctx: Context) -> Result:
        seen.append(ctx.remaining())
        return ANSWER

    await policy()(REQUEST, Context(clock=clock).with_timeout(60), call_next)
    assert seen == [60.0]


async def test_cancels_a_call_that_outlives_the_deadline() -> None:
    clock = FakeClock()
    cancelled = asyncio.Event()

    async def call_next(request: Request, ctx: Context) -> Result:
        try:
            await clock.sleep(11)
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return ANSWER

    with pytest.raises(DeadlineExceeded):
        await policy()(REQUEST, Context(clock=clock), call_next)
    assert cancelled.is_set()


async def test_no_deadline_for_unconfigured_alias() -> None:
    async def call_next(request: Request, ctx: Context) -> Result:
        assert ctx.deadline is None
        return ANSWER

    other = ChatRequest(model="other", messages=())
    assert await policy()(other, Context(clock=FakeClock()), call_next) is ANSWER


async def test_expired_before_start() -> None:
    clock = FakeClock()
    ctx = Context(clock=clock).with_timeout(1)
    clock.advance(2)

    async def call_next(request: Request, ctx: Context) -> Result:
        raise AssertionError("must not be called")

    with pytest.raises(DeadlineExceeded):
        await policy()(REQUEST, ctx, call_next)


async def test_bounds_a_stream_after_its_commit_point() -> None:
    clock = FakeClock()
    closed = asyncio.Event()

    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        try:
            yield ChatChunk(text="a")
            await clock.sleep(20)
            await asyncio.Event().wait()
            yield ChatChunk(text="never")
        finally:
            closed.set()

    async def call_next(request: Request, ctx: Context) -> Result:
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)

    stream = await policy()(REQUEST, Context(clock=clock), call_next)
    assert isinstance(stream, ChatStream)
    assert (await anext(stream)).text == "a"
    # A timeout after the commit point is still a timeout (504), not an upstream interruption.
    with pytest.raises(DeadlineExceeded):
        await anext(stream)
    assert closed.is_set()
