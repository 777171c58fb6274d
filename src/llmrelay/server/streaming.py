"""Server-sent event responses: unbuffered, coalesced, with heartbeats, errors and cancellation.

The pipeline returns a :class:`ChatStream` only after its first chunk (the commit point), so the
HTTP status is decided before the first byte; from then on:

* the writer takes every chunk that is ready at once (:meth:`ChatStream.next_batch`) and sends
  their frames in one write; once the answer's finish chunk is in, the frames after it (usage,
  the format's terminator) go out in that same write;
* while the upstream is silent for ``heartbeat`` seconds a comment line keeps proxies from timing
  the connection out (one small task per stream wakes up only then; nothing is added per chunk);
* a stream that ended normally gets the response's ``trailer`` (the request's cost, known only
  now: ``: x-llmrelay-cost=0.00042``) as an SSE comment line right before the format's terminator
  (``data: [DONE]``, ``event: message_stop``), in the same write; SSE clients ignore comments;
* a failure after the commit point is written as the format's error event and the stream ends
  without its normal terminator (no ``[DONE]``, no ``message_stop``): never a clean-looking
  truncation;
* when the client disconnects, the request's :class:`~.disconnect.DisconnectGuard` cancels the
  writer at once and the ChatStream is closed in ``finally``, which closes the upstream
  connection;
* when the server's graceful-shutdown limit cancels a stream still open, it ends with an error
  event (``server_shutting_down``) instead of being cut silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llmrelay.errors import RelayError
from llmrelay.server.disconnect import DisconnectGuard
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk
from llmrelay.wire.sse import HEARTBEAT

log = logging.getLogger("llmrelay.server")

Outcome = Literal["ok", "error", "client_closed", "shutdown"]


def shutting_down() -> RelayError:
    return RelayError(
        "the server is shutting down; retry the request", status=503, code="server_shutting_down"
    )


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
        guard: DisconnectGuard,
        on_finish: Callable[[Outcome, RelayError | None], None],
        trailer: Callable[[], str | None] = lambda: None,
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
        self._guard = guard
        self._on_finish = on_finish
        self._trailer = trailer
        self._waiting = False  # the writer is waiting for the upstream (a heartbeat may go out)
        self._last_write = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome: Outcome = "client_closed"
        error: RelayError | None = None
        loop = asyncio.get_running_loop()
        beats: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            self._last_write = loop.time()
            if self._heartbeat > 0:
                beats = loop.create_task(self._heartbeats(send))
            outcome, error = await self._relay(send)
        except asyncio.CancelledError:
            if not self._guard.absorb():
                # Not the client leaving: the server's drain limit. Say so instead of cutting.
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                outcome, error = "shutdown", shutting_down()
                await _send_quietly(send, self._encoder.error(error))
        except Exception:  # the stream's edge: a bug still ends in an error event, never a truncation
            log.exception("unhandled error while streaming")
            outcome, error = "error", RelayError("internal error in llmrelay")
            await _send_quietly(send, self._encoder.error(error))
        finally:
            if beats is not None:
                beats.cancel()
            self._guard.stop()
            await self._stream.aclose()
            self._on_finish(outcome, error)

    async def _relay(self, send: Send) -> tuple[Outcome, RelayError | None]:
        stream, encoder = self._stream, self._encoder
        loop = asyncio.get_running_loop()
        pending = b""
        finishing = False  # the answer is complete: what follows goes out in one last write
        try:
            while True:
                self._waiting = True
                batch = await stream.next_batch()
                self._waiting = False
                if not batch:
                    end = _before_terminator(encoder.end(), _comment(self._trailer()))
                    await send({"type": "http.response.body", "body": pending + end})
                    return "ok", None
                pending += _frames(encoder, batch)
                finishing = finishing or any(chunk.finish_reason is not None for chunk in batch)
                if finishing:
                    continue
                await send({"type": "http.response.body", "body": pending, "more_body": True})
                pending = b""
                self._last_write = loop.time()
        except RelayError as err:
            self._waiting = False
            await send({"type": "http.response.body", "body": pending + encoder.error(err)})
            return "error", err

    async def _heartbeats(self, send: Send) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delay = self._last_write + self._heartbeat - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if self._waiting:
                try:
                    await send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
                except Exception:  # the response ended while this waited to write: nothing to keep alive
                    return
            self._last_write = loop.time()


def _frames(encoder: FrameEncoder, batch: Sequence[ChatChunk]) -> bytes:
    if len(batch) == 1:
        return encoder.chunk(batch[0])
    return b"".join(encoder.chunk(chunk) for chunk in batch)


def _before_terminator(end: bytes, comment: bytes) -> bytes:
    """``comment`` inserted before the last event of a format's end frames: its terminator
    (``data: [DONE]``, ``event: message_stop``), after the usage frames that precede it."""
    if not comment:
        return end
    boundary = end.rfind(b"\n\n", 0, len(end) - 2)  # the blank line that ends the event before it
    start = 0 if boundary < 0 else boundary + 2
    return end[:start] + comment + end[start:]


def _comment(text: str | None) -> bytes:
    """An SSE comment line (the text is the server's own, never a caller's: no line breaks)."""
    return b"" if text is None else b": " + text.encode() + b"\n\n"


async def _send_quietly(send: Send, frame: bytes) -> None:
    """A last frame to a client that may be gone already: failing to deliver it changes nothing."""
    try:
        await send({"type": "http.response.body", "body": frame})
    except Exception:
        log.debug("could not deliver the last frame of a stream", exc_info=True)
