"""Server-sent event responses: unbuffered, uncompressed, with heartbeats, errors and cancellation.

The pipeline returns a :class:`ChatStream` only after its first chunk (the commit point), so the
HTTP status is decided before the first byte; from then on:

* chunks are written as they come, each encoded by the route's :class:`FrameEncoder`;
* while the upstream is silent for ``heartbeat`` seconds a comment line keeps proxies from
  timing the connection out;
* a failure after the commit point is written as the format's error event and the stream ends
  without its normal terminator (no ``[DONE]``): never a clean-looking truncation;
* when the client disconnects, the writer is cancelled at once and the ChatStream is closed in
  ``finally``, which closes the upstream connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Literal, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llmrelay.errors import RelayError
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk
from llmrelay.wire.sse import HEARTBEAT

log = logging.getLogger("llmrelay.server")

Outcome = Literal["ok", "error", "client_closed"]


class FrameEncoder(Protocol):
    def chunk(self, chunk: ChatChunk) -> bytes: ...

    def end(self) -> bytes: ...

    def error(self, err: RelayError) -> bytes: ...


class SSEResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        stream: ChatStream,
        encoder: FrameEncoder,
        *,
        heartbeat: float,
        headers: dict[str, str],
        on_finish: Callable[[Outcome, RelayError | None], None],
    ) -> None:
        super().__init__(
            content=None,
            status_code=200,
            headers={"cache-control": "no-cache", "x-accel-buffering": "no", **headers},
        )
        # A streamed body has no length: drop the ``content-length: 0`` Response adds for no content.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._stream = stream
        self._encoder = encoder
        self._heartbeat = heartbeat
        self._on_finish = on_finish
        self._outcome: Outcome = "client_closed"
        self._error: RelayError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        writer = asyncio.ensure_future(self._write(send))
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, watcher):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._on_finish(self._outcome, self._error)
        if writer.done() and not writer.cancelled() and writer.exception() is not None:
            raise writer.exception()  # type: ignore[misc]

    async def _write(self, send: Send) -> None:
        async for frame in self._frames():
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _frames(self) -> AsyncIterator[bytes]:
        stream, encoder = self._stream, self._encoder
        pending: asyncio.Future[ChatChunk] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(anext(stream))
                while not (await asyncio.wait({pending}, timeout=self._heartbeat))[0]:
                    yield HEARTBEAT
                try:
                    chunk = pending.result()
                except StopAsyncIteration:
                    break
                yield encoder.chunk(chunk)
            self._outcome = "ok"
            yield encoder.end()
        except RelayError as err:
            self._outcome, self._error = "error", err
            yield encoder.error(err)
        except Exception:  # the stream's edge: a bug still ends in an error event, never a truncation
            log.exception("unhandled error while streaming")
            self._outcome, self._error = "error", RelayError("internal error in llmrelay")
            yield encoder.error(self._error)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            await stream.aclose()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
