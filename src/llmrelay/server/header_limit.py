"""Limits on what a client sends, inside uvicorn's httptools protocol: a size cap (431) and a
time limit (408) on a request's head (request line and headers), and a time limit on a body that
is still arriving after its answer was sent.

Why here and not in the ASGI app: the app runs once the head is complete, too late. uvicorn's
httptools protocol has no head limit (its ``h11_max_incomplete_event_size`` only binds h11), and
httptools joins a header value across reads by concatenation, so a 16 MiB header was buffered
whole, in quadratic time, before the app saw anything.

How: while a head is incomplete, the bytes of each read count against the cap (``data_received``),
so a client streaming an endless header is cut off after at most the cap plus two reads; a head
that completes within a read is measured exactly in ``on_headers_complete``. A read in which the
previous message ended is not counted: httptools does not say where in it the next head starts, and
counting the whole read would take the end of a large body for header bytes. The answer is a 431 in the
caller's error shape (Anthropic's under ``/v1/messages``), with a request id and an access-log
line, followed by a lingering close: our side is shut for writing and whatever the client still
sends is read and dropped until it closes or :data:`LINGER_SECONDS` pass, so the client reads the
431 instead of a connection reset (RFC 9112 §9.6).

The time limit (``server.header_timeout``): uvicorn's only timer is the keep-alive one, and any
read cancels it, so a client sending a header byte every few seconds held its connection (and a
slot of the process) for ever, and so did a connection that never sent a byte. Here a timer runs
from the connection's start until its first head is complete, and from the first byte of each
later head (``on_message_begin``) until that head is complete. When it fires on a partial head the
client gets a 408 in its error shape (the same lingering close); a connection that has sent
nothing is just closed, as uvicorn closes an idle keep-alive connection.

A body the app did not wait for (a route that reads none, a 401 before reading, the 408 of
``server.body_timeout``) kept its connection too: uvicorn goes on reading and dropping it, and
each read cancels the keep-alive timer. Once the answer is complete, what is left of the body
must arrive within ``body_timeout``, or the connection is closed (the answer has been sent; a
client still trickling has nothing more to get).

The cap travels in uvicorn's own ``h11_max_incomplete_event_size`` setting, the same limit for
h11, the time limits in :class:`HeadConfig` (uvicorn's config with two more fields, picklable, so
they reach worker processes too); the protocol is named by import string. Used by
:mod:`llmrelay.server.run`; nothing else in the server knows about it. It also gives each
request's answer a :class:`~llmrelay.server.head_write.HeadWriter` (head and body in one write),
and each request a :class:`~llmrelay.server.disconnect.DisconnectSignal`, fired when the connection
is lost before its answer is complete.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import msgspec
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from llmrelay.context import new_request_id
from llmrelay.errors import InvalidRequest
from llmrelay.server.access_log import AccessLog
from llmrelay.server.asgi import error_body_for
from llmrelay.server.disconnect import EXTENSION, DisconnectSignal
from llmrelay.server.head_write import HeadWriter
from llmrelay.telemetry.metrics import RequestRecord

PROTOCOL = "llmrelay.server.header_limit:HeaderLimitProtocol"
"""What ``uvicorn.Config(http=...)`` takes to use this protocol."""

DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
LINGER_SECONDS = 2.0
_LINE_OVERHEAD = len(" HTTP/1.1\r\n") + 1  # request line around method and target
_HEADER_OVERHEAD = len(": \r\n")


class HeadConfig(Config):
    """uvicorn's config and the time limits (``server.header_timeout``, ``server.body_timeout``)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT


class HeaderLimitProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._cap = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        self._in_head = True  # a connection starts by sending a head
        self._head_bytes = 0
        self._head_began_mid_read = False
        self._refused = False
        limits = config if isinstance(config, HeadConfig) else None
        self._head_timeout = limits.header_timeout if limits else DEFAULT_HEADER_TIMEOUT
        self._body_timeout = limits.body_timeout if limits else DEFAULT_BODY_TIMEOUT
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._in_message = False  # a byte of the current message has arrived
        # Each request's disconnect signal, until its answer is complete (pipelined ones too).
        self._signals: list[tuple[RequestResponseCycle, DisconnectSignal]] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        self._disarm_drain_timer()
        super().connection_lost(exc)
        for cycle, signal in self._signals:
            if not cycle.response_complete:
                signal.fire()
        self._signals = []

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._in_head and not self._refused and not self.transport.is_closing():
            # Answered before the body was in: the rest has body_timeout to arrive.
            self._drain_timer = self.loop.call_later(self._body_timeout, self._drain_timed_out)

    def _drain_timed_out(self) -> None:

        self._drain_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _disarm_drain_timer(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def on_message_begin(self) -> None:
        self._in_message = True
        if self._head_timer is None:  # the first head keeps the timer armed at the connection's start
            self._arm_head_timer()
        super().on_message_begin()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: the rest of a refused request is dropped unparsed
        super().data_received(data)
        counted = self._in_head and not self._head_began_mid_read
        self._head_began_mid_read = False
        if counted and not self._refused and not self.transport.is_closing():
            self._head_bytes += len(data)  # the whole read was head
            if self._head_bytes > self._cap:
                self._refuse(too_large(self._cap))

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._disarm_head_timer()
        self._in_head = False
        if head_size(self.parser.get_method(), self.url, self.headers) > self._cap:
            self._refuse(too_large(self._cap))
            return
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not previous and cycle is not None:
            # The new request's answer writes its head with its first body bytes (head_write).
            cycle.transport = HeadWriter(self.transport, self.loop)  # type: ignore[assignment]
            # Its task has not run yet: the app finds the signal in the scope it gets.
            signal = DisconnectSignal()
            extensions: dict[str, Any] = cycle.scope.setdefault("extensions", {})
            extensions[EXTENSION] = signal
            self._signals = [(c, s) for c, s in self._signals if not c.response_complete]
            self._signals.append((cycle, signal))

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm_drain_timer()
        self._in_head = True
        self._in_message = False
        self._head_bytes = 0
        self._head_began_mid_read = True
        super().on_message_complete()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:

        self._head_timer = None
        if self._refused or self.transport.is_closing():
            return
        if not self._in_message:
            self.transport.close()  # not a byte of a request: nobody to answer
            return
        self._refuse(
            InvalidRequest(
                f"the request headers did not arrive within {self._head_timeout:g}s (server.header_timeout)",
                status=int(HTTPStatus.REQUEST_TIMEOUT),
                code="request_timeout",
            )
        )

    def _refuse(self, err: InvalidRequest) -> None:
        self._refused = True
        self._disarm_head_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request while the previous response is still being written: no clean
            # place for an error in that byte stream.
            self.transport.close()
            return
        path = _path(getattr(self, "url", b""))
        request_id = new_request_id()
        status = HTTPStatus(err.status)
        body = msgspec.json.encode(error_body_for(path)(err))
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"x-request-id: {request_id}\r\nconnection: close\r\n\r\n".encode()
        )
        self.transport.write(b"".join(head) + body)
        AccessLog().record(
            RequestRecord(request_id=request_id, route=path, status=err.status, seconds=0.0, error=err.code)
        )
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self._unset_keepalive_if_required()
        # Reuse uvicorn's keep-alive timer slot: its handler closes the transport, and uvicorn
        # cancels it when the connection goes away first.
        self.timeout_keep_alive_task = self.loop.call_later(LINGER_SECONDS, self.timeout_keep_alive_handler)


def too_large(cap: int) -> InvalidRequest:
    return InvalidRequest(
        f"request headers exceed the {cap}-byte limit (server.max_header_bytes)",
        status=int(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
        code="request_header_fields_too_large",
    )


def head_size(method: bytes, url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """Bytes of a parsed head as sent on the wire (HTTP/1.1 framing)."""
    return (
        len(method)
        + len(url)
        + _LINE_OVERHEAD
        + sum(len(name) + len(value) + _HEADER_OVERHEAD for name, value in headers)
        + 2
    )


def _path(url: bytes) -> str:
    """The path of a (possibly partial) request target, for routing the error shape and the log.

    The query is left out (it may carry credentials) and the path shortened for the log line.
    """
    return url.partition(b"?")[0][:256].decode("latin-1") or "/"
