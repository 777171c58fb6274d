"""A response's head goes out with its first body bytes: one write, not two, order kept."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from llmrelay.server.head_write import HeadWriter
from llmrelay.server.header_limit import HeadConfig, HeaderLimitProtocol


class Recorder:
    """A transport that keeps what is written to it (and passes everything else on)."""

    def __init__(self, inner: Any = None) -> None:
        self._inner = inner
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        if self._inner is not None:
            self._inner.write(data)

    def close(self) -> None:
        self.closed = True
        if self._inner is not None:
            self._inner.close()

    def is_closing(self) -> bool:
        return self.closed if self._inner is None else bool(self._inner.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _expecting_head() -> tuple[Recorder, HeadWriter]:
    sink = Recorder()
    return sink, HeadWriter(sink, asyncio.get_running_loop())  # type: ignore[arg-type]


async def test_the_head_rides_with_the_body_written_in_the_same_turn() -> None:
    sink, writer = _expecting_head()
    writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert sink.writes == []
    writer.write(b"body")
    writer.write(b"more")
    assert sink.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]
    await asyncio.sleep(0)  # the turn ends: the cancelled flush writes nothing again
    assert sink.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"more"]


async def test_a_head_alone_goes_out_when_the_turn_ends() -> None:
    sink, writer = _expecting_head()
    writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
    await asyncio.sleep(0)  # one turn of the loop, no timing: call_soon ran before this resumed
    assert sink.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    writer.write(b"later")
    assert sink.writes == [b"HTTP/1.1 200 OK\r\n\r\n", b"later"]


async def test_closing_writes_a_held_head_first() -> None:
    sink, writer = _expecting_head()
    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    writer.close()
    assert sink.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"] and sink.closed


class RecordingProtocol(HeaderLimitProtocol):
    """The server's protocol over a transport that records its writes."""

    recorders: list[Recorder] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        recorder = Recorder(transport)
        RecordingProtocol.recorders.append(recorder)
        super().connection_made(recorder)  # type: ignore[arg-type]


async def _unary(request: Request) -> Response:
    return PlainTextResponse("hello")


async def _streamed(request: Request) -> Response:
    go = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        request.app.state.go = go
        await go.wait()
        yield b"second"

    return StreamingResponse(body())


@contextlib.asynccontextmanager
async def _server() -> AsyncIterator[tuple[str, Starlette]]:
    app = Starlette(routes=[Route("/unary", _unary), Route("/streamed", _streamed)])
    config = HeadConfig(app, http=RecordingProtocol, log_level="warning", lifespan="off")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until the server accepts them
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_through_the_server_a_unary_answer_is_one_write_and_a_stream_starts_with_one() -> None:
    RecordingProtocol.recorders = []
    async with _server() as (url, app), aiohttp.ClientSession(url) as client:
        async with client.get("/unary") as r:
            assert r.status == 200 and await r.text() == "hello"
        (conn,) = RecordingProtocol.recorders
        (write,) = conn.writes
        assert write.startswith(b"HTTP/1.1 200") and write.endswith(b"hello")

        conn.writes.clear()
        async with client.get("/streamed") as r:
            assert await r.content.readexactly(5) == b"first"  # the head did not wait for more body
            app.state.go.set()
            assert await r.content.read() == b"second"
        head_and_first, *rest = conn.writes
        assert head_and_first.startswith(b"HTTP/1.1 200") and head_and_first.endswith(b"5\r\nfirst\r\n")
        assert rest and b"second" in rest[0]
