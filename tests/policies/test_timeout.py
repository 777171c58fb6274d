from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from llmrelay.classify import classify
from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import StreamTimeout, Timeout
from llmrelay.policies.timeout import AttemptTimeout
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, text_message

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hi"),))
OK = ChatResponse(id="ok", model="m", created=0, message=text_message("assistant", "ok"))


async def test_first_token_timeout_cancels_the_attempt() -> None:
    clock = FakeClock()
    cancelled = asyncio.Event()

    async def slow(request: Request, ctx: Context) -> Result:
        try:
            await clock.sleep(3)
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return OK

    with pytest.raises(Timeout, match="within 2"):
        await AttemptTimeout(clock, first_token=2, idle=None, label="t")(REQUEST, Context(clock=clock), slow)
    assert cancelled.is_set()


async def test_fast_answers_pass() -> None:
    clock = FakeClock()

    async def fast(request: Request, ctx: Context) -> Result:
        await clock.sleep(1)
        return OK

    assert (
        await AttemptTimeout(clock, first_token=2, idle=1, label="t")(REQUEST, Context(clock=clock), fast)
        is OK
    )


async def test_idle_gap_mid_stream_ends_it_with_an_error() -> None:
    clock = FakeClock()
    closed = asyncio.Event()

    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        try:
            yield ChatChunk(text="a")
            await clock.sleep(0.5)
            yield ChatChunk(text="b")
            await clock.sleep(5)
            await asyncio.Event().wait()
        finally:
            closed.set()

    async def call_next(request: Request, ctx: Context) -> Result:
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)

    stream = await AttemptTimeout(clock, first_token=None, idle=1, label="t")(
        REQUEST, Context(clock=clock), call_next
    )
    assert isinstance(stream, ChatStream)
    assert [(await anext(stream)).text, (await anext(stream)).text] == ["a", "b"]
    with pytest.raises(StreamTimeout) as info:
        await anext(stream)
    assert isinstance(info.value, Timeout) and info.value.status == 504
    assert not classify(info.value).retry
    assert closed.is_set()
