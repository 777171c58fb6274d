"""A small pipelined Redis connection for the Redis stores (RESP2 over asyncio): the rate limits' hot
path and the KV (:mod:`.redis`).

Why not redis-py here: a rate limit costs each request two or three Redis calls, and redis-py's
asyncio client spends about 150 µs of CPU on each (connection pool, command machinery, stream
reader) where the protocol needs a few; measured in ``bench/limits_cost.py``. This connection
writes every command at once (several requests in flight share one socket: pipelining without a
batch step) and matches replies in order. It encodes any command (the stores send ``EVALSHA``,
``SCRIPT LOAD``, ``GET``, ``SET``, ``DEL``, ``PING``, ``AUTH``, ``SELECT``) and parses every RESP2
reply type; no client package is needed. ``redis://[[user]:password@]host[:port][/db]`` and
``rediss://`` (TLS) URLs.

A connection that fails, or whose oldest call has waited longer than ``call_timeout``, is dropped
with every call waiting on it (they raise :class:`RedisDown`); the next call connects again. The
timeout is one watchdog timer per connection, not one per call: replies come in order, so only the
oldest waiting call can be late. A caller that is cancelled (its client went away) leaves its
reply to be dropped when it comes: the others go on.

Per call it costs one encode, one future and one parse; :meth:`Connection.send` sends without a
coroutine or a task (for what nobody waits on). Measured in ``bench/limits_cost.py``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from functools import partial
from typing import Any, cast
from urllib.parse import unquote, urlsplit


class RedisDown(ConnectionError):
    """The connection failed, closed, or an answer did not come in time."""


class ReplyError(Exception):
    """Redis answered with an error (``-ERR ...``, ``-NOSCRIPT ...``)."""


Reply = bytes | int | list[Any] | ReplyError | None


def encode(*args: bytes | str | int | float) -> bytes:
    """One command as a RESP array of bulk strings (floats as ``repr``: exact round trips)."""
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        if type(arg) is str:
            data = arg.encode()
        elif type(arg) is bytes:
            data = arg
        elif type(arg) is float:
            data = repr(arg).encode()
        else:
            data = b"%d" % arg  # type: ignore[str-format]  # int (a bool too), as typed
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(parts)


_BULK, _ARRAY, _SIMPLE, _ERROR, _INTEGER = b"$*+-:"


def parse(buf: bytes | bytearray, pos: int = 0) -> tuple[Reply, int] | None:
    """One reply from ``buf`` at ``pos`` and the position after it; ``None`` if incomplete.
    Bulk strings and arrays (what the limit script returns) are looked at first."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind = buf[pos]
    if kind == _BULK:
        size = int(buf[pos + 1 : end])
        pos = end + 2
        if size < 0:
            return None, pos
        stop = pos + size
        if len(buf) < stop + 2:
            return None
        return bytes(buf[pos:stop]), stop + 2
    if kind == _ARRAY:
        count = int(buf[pos + 1 : end])
        pos = end + 2
        if count < 0:
            return None, pos
        items: list[Any] = []
        for _ in range(count):
            found = parse(buf, pos)
            if found is None:
                return None
            items.append(found[0])
            pos = found[1]
        return items, pos
    line = bytes(buf[pos + 1 : end])
    if kind == _SIMPLE:
        return line, end + 2
    if kind == _ERROR:
        return ReplyError(line.decode(errors="replace")), end + 2
    if kind == _INTEGER:
        return int(line), end + 2
    raise RedisDown(f"unexpected reply type {bytes([kind])!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.waiting: collections.deque[tuple[asyncio.Future[Reply], float]] = collections.deque()
        self.buffer = bytearray()
        self.outgoing: list[bytes] = []
        self.closed = False
        self.timeout = timeout
        self.watchdog: asyncio.TimerHandle | None = None

    def request(self, data: bytes) -> asyncio.Future[Reply]:
        """Send ``data`` (one command) and return the future of its reply."""
        loop = self.loop
        future = loop.create_future()
        now = loop.time()
        self.waiting.append((future, now))
        if not self.outgoing:
            loop.call_soon(self.flush)
        # Everything queued in one turn of the event loop leaves in one write (concurrent
        # requests' calls share a system call).
        self.outgoing.append(data)
        if self.timeout is not None and self.watchdog is None:
            self.watchdog = loop.call_at(now + self.timeout, self.check)
        return future

    def check(self) -> None:
        """The watchdog: one timer per connection, not one per call. Replies come in order, so
        only the oldest call waiting can be late; past ``timeout`` the connection is dropped."""
        self.watchdog = None
        if not self.waiting or self.timeout is None:
            return
        due = self.waiting[0][1] + self.timeout
        if self.loop.time() >= due:
            self.fail(RedisDown("timed out"))
        else:
            self.watchdog = self.loop.call_at(due, self.check)

    def flush(self) -> None:
        data, self.outgoing = b"".join(self.outgoing), []
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are transports.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        pos = 0
        waiting = self.waiting
        try:
            while waiting:
                found = parse(self.buffer, pos)
                if found is None:
                    break
                reply, pos = found
                future = waiting.popleft()[0]
                if not future.done():  # a caller that went away; its reply is dropped
                    future.set_result(reply)
        except (RedisDown, ValueError) as err:
            self.fail(RedisDown(f"unreadable reply: {err}"))
            return
        del self.buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisDown("connection closed"))

    def fail(self, err: RedisDown) -> None:
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(err)
        if self.transport is not None:
            self.transport.abort()


class Connection:
    """One lazily (re)connected, pipelined connection to the Redis at ``url``. With a
    ``call_timeout``, a call never waits longer than that for its reply, a (re)connect included."""

    def __init__(self, url: str, *, connect_timeout: float, call_timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("a redis:// or rediss:// URL")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._tls = parts.scheme == "rediss"
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._db = int(parts.path.strip("/") or 0)
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    async def call(self, *args: bytes | str | int | float) -> Reply:
        """Send one command and wait for its reply (raises :class:`RedisDown`; a Redis error
        comes back as a :class:`ReplyError` value)."""
        # A caller that goes away (a client disconnected) leaves its future behind: the reply is
        # dropped when it comes, and the other calls on this connection go on.
        sent = self.send(*args)
        if sent is not None:  # connected: the watchdog bounds the wait
            return await sent
        if self._call_timeout is None:
            return await (await self._connected()).request(encode(*args))
        try:
            async with asyncio.timeout(self._call_timeout):
                return await (await self._connected()).request(encode(*args))
        except TimeoutError as err:
            self.reset()
            raise RedisDown("timed out") from err

    def send(self, *args: bytes | str | int | float) -> asyncio.Future[Reply] | None:
        """Send one command now, without a coroutine or a task (a reply nobody awaits, such as a
        release in the background): the future of its reply, ``None`` when not connected."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            return None
        return protocol.request(encode(*args))

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self._tls else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    partial(_Protocol, self._call_timeout), self._host, self._port, ssl=context
                )
        except (OSError, TimeoutError) as err:
            raise RedisDown(f"cannot connect: {type(err).__name__}") from err
        for command in self._hello():
            reply = await protocol.request(encode(*command))
            if isinstance(reply, ReplyError):
                protocol.fail(RedisDown("refused the connection's credentials or database"))
                raise RedisDown("refused the connection's credentials or database")
        # Published only now: a call sent between AUTH and SELECT would run on database 0.
        self._protocol = protocol
        return protocol

    def _hello(self) -> list[tuple[str, ...]]:
        commands: list[tuple[str, ...]] = []
        if self._password is not None:
            auth = (self._user, self._password) if self._user else (self._password,)
            commands.append(("AUTH", *auth))
        if self._db:
            commands.append(("SELECT", str(self._db)))
        return commands

    def reset(self) -> None:
        """Drop the connection and every call waiting on it (after a timeout: a Redis that does
        not answer in time is treated as down; the next call connects again)."""
        if self._protocol is not None:
            self._protocol.fail(RedisDown("timed out"))

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.fail(RedisDown("closed"))
            self._protocol = None
