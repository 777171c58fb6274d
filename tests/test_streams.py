from collections.abc import AsyncGenerator

import pytest

from llmrelay.errors import ConnectionFailed, StreamInterrupted, UpstreamError
from llmrelay.streams import ChatStream
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
    return await ChatStream.open(source.gen(), id="s1", model="m", created=1, provider="p")


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


async def test_derive_transforms_and_closing_it_closes_the_inner_stream() -> None:
    source = Source(CHUNKS)
    inner = await open_stream(source)

    async def upper(s: ChatStream) -> AsyncGenerator[ChatChunk, None]:
        async for chunk in s:
            yield ChatChunk(text=chunk.text.upper())

    outer = inner.derive(upper)
    assert outer.id == "s1"
    assert (await anext(outer)).text == "HEL"
    await outer.aclose()
    assert source.closed


async def test_collect_reads_everything() -> None:
    final = await (await open_stream(Source(CHUNKS))).collect()
    assert final.text == "Hello"


async def test_interrupted_stream_keeps_a_relay_error_already_interrupted() -> None:
    async def gen() -> AsyncGenerator[ChatChunk, None]:
        yield ChatChunk(text="a")
        raise UpstreamError("boom", provider="x")

    stream = await ChatStream.open(gen(), id="i", model="m", created=0)
    await anext(stream)
    with pytest.raises(StreamInterrupted) as info:
        await anext(stream)
    assert info.value.provider == "x"
