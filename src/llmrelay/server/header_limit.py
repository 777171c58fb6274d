"""A cap on a request's head (request line and headers), inside uvicorn's httptools protocol.

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

The cap travels in uvicorn's own ``h11_max_incomplete_event_size`` setting, the same limit for
h11, so this class is named by import string and works in every worker process. Used by
:mod:`llmrelay.server.run`; nothing else in the server knows about it.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import msgspec
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from llmrelay.context import new_request_id
from llmrelay.errors import InvalidRequest
from llmrelay.server.access_log import AccessLog
from llmrelay.server.asgi import error_body_for
from llmrelay.telemetry.metrics import RequestRecord

PROTOCOL = "llmrelay.server.header_limit:HeaderLimitProtocol"
"""What ``uvicorn.Config(http=...)`` takes to use this protocol."""

DEFAULT_MAX_HEADER_BYTES = 32 * 1024
LINGER_SECONDS = 2.0
_STATUS = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
_LINE_OVERHEAD = len(" HTTP/1.1\r\n") + 1  # request line around method and target
_HEADER_OVERHEAD = len(": \r\n")


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

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: the rest of a refused request is dropped unparsed
        super().data_received(data)
        counted = self._in_head and not self._head_began_mid_read
        self._head_began_mid_read = False
        if counted and not self._refused and not self.transport.is_closing():
            self._head_bytes += len(data)  # the whole read was head
            if self._head_bytes > self._cap:
                self._refuse()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        if head_size(self.parser.get_method(), self.url, self.headers) > self._cap:
            self._refuse()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_head = True
        self._head_bytes = 0
        self._head_began_mid_read = True
        super().on_message_complete()

    def _refuse(self) -> None:
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request while the previous response is still being written: no clean
            # place for a 431 in that byte stream.
            self.transport.close()
            return
        path = _path(getattr(self, "url", b""))
        request_id = new_request_id()
        err = InvalidRequest(
            f"request headers exceed the {self._cap}-byte limit (server.max_header_bytes)",
            status=int(_STATUS),
            code="request_header_fields_too_large",
        )
        body = msgspec.json.encode(error_body_for(path)(err))
        head = [f"HTTP/1.1 {_STATUS.value} {_STATUS.phrase}\r\n".encode()]
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
