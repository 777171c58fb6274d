"""The lean upstream client against a real HTTP server on loopback: reuse, limits, odd endings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from llmrelay.errors import ConfigError, Timeout
from llmrelay.providers.http import Upstream
from llmrelay.providers.http1 import Pool
from tests.fakes.server import serve


class Server:
    def __init__(self) -> None:
        self.peers: list[object] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0
        self.two_waiting = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/ok", self.ok)
        app.router.add_post("/close", self.close)
        app.router.add_post("/slow", self.slow)
        return app

    async def ok(self, request: web.Request) -> web.Response:
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.json_response({"echo": (await request.read()).decode()})

    async def close(self, request: web.Request) -> web.Response:
        return web.Response(body=b"bye", headers={"connection": "close"})

    async def slow(self, request: web.Request) -> web.Response:
        self.waiting += 1
        if self.waiting == 2:
            self.two_waiting.set()
        await self.gate.wait()
        return web.Response(body=b"done")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[Server, int]]:
    fake = Server()
    async with serve(fake.app()) as url:
        yield fake, int(url.rsplit(":", 1)[1])


def request(path: str, body: bytes = b"{}") -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


async def call(pool: Pool, path: str, body: bytes = b"{}") -> tuple[int, bytes]:
    connection = await pool.acquire()
    try:
        connection.send(request(path, body))
        await connection.head()
        return connection.status, await connection.read_all()
    finally:
        pool.release(connection)


async def test_a_kept_alive_connection_serves_the_next_request(server: tuple[Server, int]) -> None:
    fake, port = server
    pool = Pool("127.0.0.1", port, tls=False, limit=4, connect_timeout=5)
    for i in range(5):
        assert await call(pool, "/ok", b"%d" % i) == (200, b'{"echo": "%d"}' % i)
    assert len(set(fake.peers)) == 1  # one connection for all five
    pool.close()


async def test_a_connection_the_server_closes_is_not_reused(server: tuple[Server, int]) -> None:
    fake, port = server
    pool = Pool("127.0.0.1", port, tls=False, limit=4, connect_timeout=5)
    assert await call(pool, "/close") == (200, b"bye")
    assert await call(pool, "/ok") == (200, b'{"echo": "{}"}')
    assert await call(pool, "/ok") == (200, b'{"echo": "{}"}')
    assert len(set(fake.peers)) == 1  # a fresh connection after the close, then kept
    pool.close()


async def test_the_pool_limit_queues_callers_instead_of_opening_more(server: tuple[Server, int]) -> None:
    fake, port = server
    fake.gate.clear()
    pool = Pool("127.0.0.1", port, tls=False, limit=2, connect_timeout=5)
    calls = [asyncio.ensure_future(call(pool, "/slow")) for _ in range(5)]
    await fake.two_waiting.wait()
    await asyncio.sleep(0.05)  # not synchronisation: a window in which a third connection would show
    assert fake.waiting == 2 and pool._open == 2
    fake.gate.set()
    assert [await c for c in calls] == [(200, b"done")] * 5
    assert fake.waiting == 5 and pool._open <= 2
    pool.close()


async def test_a_response_cut_mid_body_is_a_connection_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = Pool("127.0.0.1", port, tls=False, limit=1, connect_timeout=5)
    with pytest.raises(ConnectionError):
        await call(pool, "/")
    assert pool._open == 0  # the broken connection was dropped, not pooled
    listener.close()
    await listener.wait_closed()


async def test_a_body_that_ends_with_the_connection_is_complete() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = Pool("127.0.0.1", port, tls=False, limit=1, connect_timeout=5)
    assert await call(pool, "/") == (200, b"all of it")
    listener.close()
    await listener.wait_closed()


@pytest.mark.parametrize("value", ["ok\r\nx-injected: 1", "nul\0", "snowman \u2603"])
def test_a_header_that_could_break_the_request_head_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="not a valid HTTP header"):
        Upstream("http://127.0.0.1:1", headers={"x-custom": value}, provider="openai")


async def test_a_waiter_cancelled_after_its_turn_came_passes_the_turn_on(server: tuple[Server, int]) -> None:
    _, port = server
    pool = Pool("127.0.0.1", port, tls=False, limit=1, connect_timeout=5)
    held = await pool.acquire()
    first = asyncio.ensure_future(pool.acquire())
    second = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0)  # both are queued behind the one connection
    held.close()
    pool.release(held)  # the slot frees up: the first in line is given the turn ...
    first.cancel()  # ... and leaves before it could take it
    with pytest.raises(asyncio.CancelledError):
        await first
    connection = await asyncio.wait_for(second, 5)  # the turn was not lost
    pool.release(connection)
    pool.close()


async def _stalling_server(head: bytes) -> tuple[asyncio.Server, int, asyncio.Event]:
    """Answers ``head`` (maybe nothing) to every request, then holds the connection open."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        await writer.drain()
        await done.wait()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    return listener, listener.sockets[0].getsockname()[1], done


@pytest.mark.parametrize(
    ("head", "where"),
    [(b"", "no status line"), (b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{", "body stalls")],
)
async def test_an_upstream_that_stalls_times_out_and_its_connection_is_dropped(
    head: bytes, where: str
) -> None:
    listener, port, done = await _stalling_server(head)
    upstream = Upstream(f"http://127.0.0.1:{port}", read_timeout=0.1, provider="openai")
    await upstream.open()
    started = asyncio.get_running_loop().time()
    with pytest.raises(Timeout, match="timed out"):
        await asyncio.wait_for(upstream.post("/x", b"{}", headers={}), 5)
    assert asyncio.get_running_loop().time() - started < 2, where
    assert upstream._pool is not None and upstream._pool._open == 0  # closed, not pooled
    done.set()
    await upstream.aclose()
    listener.close()
    await listener.wait_closed()


async def test_a_finished_call_leaves_no_timer_on_its_pooled_connection(server: tuple[Server, int]) -> None:
    fake, port = server
    upstream = Upstream(f"http://127.0.0.1:{port}", read_timeout=0.05, provider="openai")
    await upstream.open()
    assert (await upstream.post("/ok", b"1", headers={})).status == 200
    await asyncio.sleep(0.15)  # not synchronisation: longer than the timeout a stray timer would fire after
    assert (await upstream.post("/ok", b"2", headers={})).body == b'{"echo": "2"}'
    assert len(set(fake.peers)) == 1  # the same kept-alive connection served both
    async with upstream.stream("/ok", b"3", headers={}) as reply:
        await asyncio.sleep(0.15)  # a stream's gaps are the pump's idle limit, not this timer's
        assert reply.status == 200 and await reply.body() == b'{"echo": "3"}'
    assert (await upstream.post("/ok", b"4", headers={})).status == 200
    assert len(set(fake.peers)) == 1  # no timer failed the connection while the stream held it
    await upstream.aclose()
