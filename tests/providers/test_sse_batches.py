"""The providers' shared read loop: one batch per read, errors after the chunks decoded before them."""

from __future__ import annotations

from typing import cast

import pytest

from llmrelay.errors import UpstreamError
from llmrelay.providers.http import StreamReply
from llmrelay.providers.sse_batches import SSEBatches
from llmrelay.types import ChatChunk
from llmrelay.wire.sse import Event


class Reads:
    def __init__(self, *reads: bytes) -> None:
        self.reads = list(reads)
        self.count = 0

    async def read(self) -> bytes:
        self.count += 1
        return self.reads.pop(0) if self.reads else b""


def decode(event: Event) -> list[ChatChunk]:
    if event.data == "boom":
        raise UpstreamError("boom")
    return [ChatChunk(text=event.data)]


async def test_one_batch_per_read_and_an_error_after_the_chunks_before_it() -> None:
    reply = Reads(b"data: a\n\ndata: b\n\n", b"data: c\n\ndata: boom\n\ndata: lost\n\n")
    batches = SSEBatches(cast(StreamReply, reply), decode)
    assert [c.text for c in await batches.next() or []] == ["a", "b"]
    assert [c.text for c in await batches.next() or []] == ["c"]
    with pytest.raises(UpstreamError):
        await batches.next()


async def test_the_end_of_the_body_flushes_and_the_terminal_event_stops_reading() -> None:
    batches = SSEBatches(cast(StreamReply, Reads(b"data: a\n\ndata: tail")), decode)
    assert [c.text for c in await batches.next() or []] == ["a"]
    assert [c.text for c in await batches.next() or []] == ["tail"]  # unterminated event, at EOF
    assert await batches.next() is None

    reply = Reads(b"data: a\n\n", b"data: never read\n\n")
    done = SSEBatches(cast(StreamReply, reply), decode, done=lambda: reply.count == 1)
    assert [c.text for c in await done.next() or []] == ["a"]
    assert await done.next() is None and reply.count == 1
