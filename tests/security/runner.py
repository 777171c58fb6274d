"""Send :class:`~tests.security.corpus.Probe` values to a running gateway, many at once.

Well-formed requests go through one aiohttp session over keep-alive connections; ``raw`` probes
(bytes a client library would refuse to send) and trickled ones each get a connection of their
own. Every answer is kept whole (status, head, body) for the secret and PII scan.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict

from tests.security.corpus import Probe

TRICKLE_GAP = 0.1


@dataclass(frozen=True)
class Answer:
    probe: Probe
    status: int
    """0: the connection closed without an answer (fine for raw garbage, counted apart)."""
    head: bytes
    body: bytes
    seconds: float = 0.0


async def send_all(url: str, probes: list[Probe], *, concurrency: int = 24) -> list[Answer]:
    host, port = url.removeprefix("http://").split(":")
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    # Probes that bend the framing headers or send large bodies get connections of their own:
    # after one, the server may rightly close (a 400 for `transfer-encoding: gzip`; a 413 whose
    # body is still arriving when body_timeout ends), and a pooled connection would pass that
    # close on to whichever probe used it next.
    framing = aiohttp.TCPConnector(limit=4, force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session,
        aiohttp.ClientSession(connector=framing, timeout=timeout, auto_decompress=False) as lone,
    ):

        async def one(probe: Probe) -> Answer:
            if probe.kind in ("slow_head", "slow_body"):
                return await _slow(host, int(port), probe)  # not gated: they wait for the server's timers
            async with gate:
                if probe.kind == "raw":
                    return await _raw(host, int(port), probe)
                return await _http(lone if _own_connection(probe) else session, url, probe)

        return await asyncio.gather(*(one(p) for p in probes))


def _own_connection(probe: Probe) -> bool:
    framing = ("transfer-encoding", "expect", "host", "content-length")
    return len(probe.body or b"") > 64 * 1024 or any(name in framing for name, _ in probe.headers)


async def _http(session: aiohttp.ClientSession, url: str, probe: Probe) -> Answer:
    try:
        return await _request(session, url, probe)
    except aiohttp.ClientError as err:  # the server cut the connection: the test says when that is fine
        return Answer(probe, 0, b"", repr(err).encode())


async def _request(session: aiohttp.ClientSession, url: str, probe: Probe) -> Answer:
    headers = CIMultiDict(probe.headers)
    async with session.request(
        probe.method,
        url + probe.path,
        headers=headers,
        data=probe.body,
        skip_auto_headers=("content-type", "user-agent"),
        allow_redirects=False,
    ) as response:
        body = await response.read()
        head = b"\r\n".join(k + b": " + v for k, v in response.raw_headers)
        return Answer(probe, response.status, head, body)


async def _raw(host: str, port: int, probe: Probe) -> Answer:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(probe.raw)
            await writer.drain()
        try:
            data = await asyncio.wait_for(reader.read(), 15)  # raw probes ask the server to close
        except ConnectionError:
            data = b""
    finally:
        writer.close()
    return _parsed(probe, data)


async def _slow(host: str, port: int, probe: Probe) -> Answer:
    """Send most of a request, then a byte every :data:`TRICKLE_GAP` s until the server answers."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection(host, port)
    auth = "".join(f"{k}: {v}\r\n" for k, v in probe.headers)
    head = f"{probe.method} {probe.path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}".encode()
    if probe.kind == "slow_body":
        head += b"content-type: application/json\r\ncontent-length: 100000\r\n\r\n{"
    received = bytearray()

    async def read_until_closed() -> None:
        with contextlib.suppress(ConnectionError):  # a reset after the answer still ends it
            while chunk := await reader.read(65536):
                received.extend(chunk)

    answer = asyncio.ensure_future(read_until_closed())

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(head)
            while not answer.done():
                await writer.drain()
                writer.write(b"x-t: 1\r\n" if probe.kind == "slow_head" else b" ")
                await asyncio.wait({answer}, timeout=TRICKLE_GAP)

    sender = asyncio.ensure_future(trickle())
    try:
        await asyncio.wait({answer}, timeout=20)
        closed = answer.done()  # if not, the server neither answered nor closed: a hang
    finally:
        answer.cancel()
        await sender
        writer.close()
    parsed = _parsed(probe, bytes(received))
    return Answer(probe, parsed.status if closed else -1, parsed.head, parsed.body, loop.time() - started)


def _parsed(probe: Probe, data: bytes) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    status = 0
    if head.startswith(b"HTTP/1."):
        with contextlib.suppress(ValueError, IndexError):
            status = int(head.split(b" ", 2)[1])
    return Answer(probe, status, head, body)
