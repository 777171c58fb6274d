import asyncio
from collections.abc import AsyncGenerator, Callable

import pytest

from llmrelay.clock import FakeClock, TimerHandle
from llmrelay.errors import (
    ConnectionFailed,
    DeadlineExceeded,
    StreamInterrupted,
    StreamTimeout,
    UpstreamError,
)
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import ChatChunk, ToolCallDelta, Usage


class Source:
    """A chunk source that records whether it was closed and can fail at a chosen point."""

    def __init__(self, chunks: list[ChatChunk], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = False

    async def gen(self) -> AsyncGenerator[ChatChunk, None]:
        try:
            for i, chunk in enumerate(self.chunks):
                if i == self.fail_at:
                    raise ConnectionFailed("dropped")
                yield chunk
            if self.fail_at == len(self.chunks):
                raise ConnectionFailed("dropped")
        finally:
            self.closed = True


async def open_stream(source: Source) -> ChatStream:
    return await ChatStream.open_chunks(source.gen(), id="s1", model="m", created=1, provider="p")


CHUNKS = [
    ChatChunk(text="Hel"),
    ChatChunk(tool_calls=(ToolCallDelta(index=0, id="c1", name="f", arguments='{"a"'),)),
    ChatChunk(text="lo"),
    ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments=": 1}"),)),
    ChatChunk(finish_reason="tool_calls"),
    ChatChunk(usage=Usage(input_tokens=3, output_tokens=2)),
]


async def test_aggregate_and_close_at_end() -> None:
    source = Source(CHUNKS)
    stream = await open_stream(source)
    assert not stream.committed
    got = [c async for c in stream]
    assert got == CHUNKS
    assert stream.committed
    final = stream.final()
    assert final.text == "Hello"
    assert final.tool_calls[0].id == "c1"
    assert final.tool_calls[0].arguments == '{"a": 1}'
    assert final.finish_reason == "tool_calls"
    assert final.usage.total_tokens == 5
    assert (final.id, final.model, final.provider) == ("s1", "m", "p")
    assert source.closed


async def test_error_before_first_chunk_raises_from_open_and_closes() -> None:
    source = Source(CHUNKS, fail_at=0)
    with pytest.raises(ConnectionFailed):
        await open_stream(source)
    assert source.closed


async def test_error_after_commit_is_stream_interrupted_and_closes() -> None:
    source = Source(CHUNKS, fail_at=2)
    stream = await open_stream(source)
    assert (await anext(stream)).text == "Hel"
    await anext(stream)
    with pytest.raises(StreamInterrupted) as info:
        await anext(stream)
    assert isinstance(info.value.__cause__, ConnectionFailed)
    assert source.closed
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_early_close_closes_source_and_final_refuses() -> None:
    source = Source(CHUNKS)
    async with await open_stream(source) as stream:
        await anext(stream)
    assert source.closed
    with pytest.raises(RuntimeError):
        stream.final()


async def test_empty_stream() -> None:
    stream = await open_stream(Source([]))
    assert [c async for c in stream] == []
    assert stream.final().text == ""


async def test_collect_reads_everything() -> None:
    final = await (await open_stream(Source(CHUNKS))).collect()
    assert final.text == "Hello"


async def test_interrupted_stream_keeps_a_relay_error_already_interrupted() -> None:
    async def gen() -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        raise UpstreamError("boom", provider="x")

    stream = await ChatStream.open_chunks(gen(), id="i", model="m", created=0)
    await anext(stream)
    with pytest.raises(StreamInterrupted) as info:
        await anext(stream)
    assert info.value.provider == "x"


class Recorder(StreamObserver):
    def __init__(self) -> None:
        self.chunks: list[ChatChunk] = []
        self.ends: list[tuple[bool, BaseException | None]] = []

    def on_chunk(self, chunk: ChatChunk) -> None:
        self.chunks.append(chunk)

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        self.ends.append((stream.done, error))


async def test_an_observer_sees_every_chunk_and_one_normal_end() -> None:
    stream = await open_stream(Source(CHUNKS))
    recorder = Recorder()
    stream.observe(recorder)
    assert [c async for c in stream] == CHUNKS
    await stream.aclose()
    assert recorder.chunks == CHUNKS
    assert recorder.ends == [(True, None)]


async def test_an_observer_sees_the_failure_after_the_commit_point() -> None:
    stream = await open_stream(Source(CHUNKS, fail_at=2))
    recorder = Recorder()
    stream.observe(recorder)
    with pytest.raises(StreamInterrupted) as info:
        async for _ in stream:
            pass
    assert recorder.ends == [(False, info.value)]
    assert recorder.chunks == CHUNKS[:2]


async def test_closing_an_unread_stream_closes_the_upstream_and_ends_observers() -> None:
    source = Source(CHUNKS)
    stream = await open_stream(source)
    recorder = Recorder()
    stream.observe(recorder)
    await stream.aclose()
    assert source.closed  # not left to the garbage collector
    assert recorder.ends == [(False, None)]
    await stream.aclose()
    assert len(recorder.ends) == 1


async def test_a_cancelled_reader_closes_the_upstream_and_ends_observers() -> None:
    release = asyncio.Event()
    closed = asyncio.Event()

    async def gen() -> AsyncGenerator[ChatChunk, None]:
        try:
            yield ChatChunk(text="a")
            await release.wait()
            yield ChatChunk(text="never")
        finally:
            closed.set()

    stream = await ChatStream.open_chunks(gen(), id="s", model="m", created=0)
    recorder = Recorder()
    stream.observe(recorder)
    await anext(stream)
    reader = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # let the reader start waiting on the source
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert closed.is_set()
    assert recorder.ends == [(False, None)]


class Broken(StreamObserver):
    def __init__(self, where: str) -> None:
        self.where = where
        self.calls = 0

    def on_chunk(self, chunk: ChatChunk) -> None:
        self.calls += 1
        if self.where == "chunk":
            raise ValueError("observer bug")

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if self.where == "end":
            raise ValueError("observer bug")


@pytest.mark.parametrize("where", ["chunk", "end"])
async def test_an_observer_that_raises_does_not_break_the_stream_and_is_logged_once(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    stream = await open_stream(Source(CHUNKS))
    broken, recorder = Broken(where), Recorder()
    stream.observe(broken)
    stream.observe(recorder)
    assert [c async for c in stream] == CHUNKS
    assert stream.final().text == "Hello"
    assert recorder.ends == [(True, None)]
    failures = [r for r in caplog.records if "observer Broken failed" in r.getMessage()]
    assert len(failures) == 1
    if where == "chunk":
        assert broken.calls == 1  # detached after its first failure


async def test_next_batch_hands_over_everything_ready_at_once() -> None:
    async def batches() -> AsyncGenerator[list[ChatChunk], None]:
        yield [ChatChunk(text="a"), ChatChunk(text="b")]
        yield [ChatChunk(text="c"), ChatChunk(finish_reason="stop")]

    stream = await ChatStream.open(batches(), id="s", model="m", created=0)
    assert (await anext(stream)).text == "a"
    assert [c.text for c in await stream.next_batch()] == ["b"]
    assert len(await stream.next_batch()) == 2
    assert await stream.next_batch() == ()
    assert stream.done and stream.final().text == "abc"


class CountingClock(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.timers = 0

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        self.timers += 1
        return super().call_later(delay, callback)


async def test_one_timer_serves_every_chunk_of_a_bounded_stream() -> None:
    clock = CountingClock()

    async def gen() -> AsyncGenerator[ChatChunk, None]:
        for i in range(100):
            await clock.sleep(0.01)
            yield ChatChunk(text=str(i))

    stream = await ChatStream.open_chunks(gen(), id="s", model="m", created=0)
    stream.limit_idle(1.0, clock, lambda: StreamTimeout("silent"))
    stream.limit_until(clock.now() + 60, clock, lambda: DeadlineExceeded("late"))
    assert len([c async for c in stream]) == 100
    assert clock.timers == 1


async def test_the_idle_limit_ends_a_silent_stream_with_a_timeout() -> None:
    clock = FakeClock()
    closed = asyncio.Event()

    async def gen() -> AsyncGenerator[ChatChunk, None]:
        try:
            yield ChatChunk(text="a")
            for _ in range(3):  # each gap is under the limit: the timer rearms, nothing expires
                await clock.sleep(0.9)
                yield ChatChunk(text="b")
            await clock.sleep(1.5)
            await asyncio.Event().wait()
        finally:
            closed.set()

    stream = await ChatStream.open_chunks(gen(), id="s", model="m", created=0)
    stream.limit_idle(1.0, clock, lambda: StreamTimeout("silent"))
    recorder = Recorder()
    stream.observe(recorder)
    assert [(await anext(stream)).text for _ in range(4)] == ["a", "b", "b", "b"]
    with pytest.raises(StreamTimeout):
        await anext(stream)
    assert closed.is_set()
    assert recorder.ends[0][1].__class__ is StreamTimeout
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_deadline_that_passed_between_reads_ends_the_stream_at_the_next_read() -> None:
    clock = FakeClock()
    stream = await open_stream(Source(CHUNKS))
    stream.limit_until(clock.now() + 1, clock, lambda: DeadlineExceeded("late"))
    await anext(stream)  # the first read's chunk is in hand already
    clock.advance(2)
    with pytest.raises(DeadlineExceeded):
        await anext(stream)
