"""A response's head and the start of its body in one write.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start``, and
the body with the next message: two ``send`` system calls (and on loopback two wake-ups of the
client) for every unary answer, the costlier of the two being the head's. The app sends both in
the same turn of the event loop almost always (a unary answer, a stream's headers with its
first chunk, which the commit point has in hand), so :class:`HeadWriter` holds the head and
writes it with the next write of the same turn, or alone at the end of that turn
(``call_soon``), so nothing waits longer than one turn. Bytes keep their order whatever comes.

One stands in for the transport of each request's uvicorn ``RequestResponseCycle`` (which uses
only ``write``, ``close`` and ``is_closing``; a pipelined request's cycle writes only once the one
before it has finished); :class:`~llmrelay.server.header_limit.HeaderLimitProtocol`
installs it.
"""

from __future__ import annotations

import asyncio


class HeadWriter:
    __slots__ = ("_expect_head", "_flush_handle", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._expect_head = True  # the first write is the head (or a ``100 Continue`` before it)
        self._held: bytes | None = None
        self._flush_handle: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            self._transport.write(held + data)
        elif self._expect_head:
            self._expect_head = False
            self._held = data
            self._flush_handle = self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        self._flush_handle = None
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
