"""The SSE writer's writes, seen at the ASGI ``send`` boundary: ready frames go out together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from llmrelay.errors import ConnectionFailed, RelayError
from llmrelay.server.disconnect import DisconnectGuard
from llmrelay.server.streaming import Outcome, SSEResponse
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, Usage


class Frames:
    def chunk(self, chunk: ChatChunk) -> bytes:
        return f"[{chunk.text or chunk.finish_reason or 'usage'}]".encode()

    def end(self) -> bytes:
        return b"[end]"

    def error(self, err: RelayError) -> bytes:
        return f"[error:{err.code}]".encode()


async def _never(*_: Any) -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError


async def _run(batches: list[list[ChatChunk]], *, fail: bool = False) -> tuple[list[bytes], list[Outcome]]:
    async def source() -> AsyncGenerator[list[ChatChunk], None]:
        for batch in batches:
            yield batch
        if fail:
            raise ConnectionFailed("dropped")

    stream = await ChatStream.open(source(), id="s", model="m", created=0)
    bodies: list[bytes] = []
    outcomes: list[Outcome] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    response = SSEResponse(
        stream,
        Frames(),
        heartbeat=15,
        headers={},
        guard=DisconnectGuard(_never),
        on_finish=lambda outcome, err: outcomes.append(outcome),
    )
    await response({"type": "http"}, _never, send)
    return bodies, outcomes


async def test_one_write_per_upstream_read_and_the_end_rides_with_the_last_one() -> None:
    bodies, outcomes = await _run(
        [
            [ChatChunk(text="a")],
            [ChatChunk(text="b"), ChatChunk(text="c")],
            [ChatChunk(text="d"), ChatChunk(finish_reason="stop")],
            [ChatChunk(usage=Usage(input_tokens=1))],
        ]
    )
    assert bodies == [b"[a]", b"[b][c]", b"[d][stop][usage][end]"]
    assert outcomes == ["ok"]


async def test_a_failure_after_the_commit_point_is_one_error_frame_and_no_end() -> None:
    bodies, outcomes = await _run([[ChatChunk(text="a")], [ChatChunk(text="b")]], fail=True)
    assert bodies == [b"[a]", b"[b]", b"[error:stream_interrupted]"]
    assert outcomes == ["error"]
