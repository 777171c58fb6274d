"""Reading an upstream SSE response as batches of canonical chunks: the loop every provider shares.

One :meth:`SSEBatches.next` call is one network read: its events are decoded into a batch
(:func:`~llmrelay.wire.batch.decode_batch`); an error event decoded after good chunks is raised on
the following call, so those chunks are delivered first. Reading stops at the end of the body, or
as soon as ``done()`` says the format's terminal event arrived (OpenAI's ``[DONE]``, Anthropic's
``message_stop``). A plain class, not a generator: a provider that stops early leaves nothing to
close.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from llmrelay.errors import RelayError
from llmrelay.providers.http import StreamReply
from llmrelay.types import ChatChunk
from llmrelay.wire.batch import decode_batch
from llmrelay.wire.sse import Event, SSEDecoder


class SSEBatches:
    def __init__(
        self,
        reply: StreamReply,
        decode: Callable[[Event], Iterable[ChatChunk]],
        *,
        done: Callable[[], bool] = lambda: False,
    ) -> None:
        self._reply = reply
        self._decode = decode
        self._done = done
        self._sse = SSEDecoder()
        self._error: RelayError | None = None
        self._ended = False

    async def next(self) -> list[ChatChunk] | None:
        """The next non-empty batch, or ``None`` once the body ended or the terminal event came."""
        while True:
            if self._error is not None:
                raise self._error
            if self._ended or self._done():
                return None
            data = await self._reply.read()
            self._ended = not data
            batch, self._error = decode_batch(
                self._sse.feed(data) if data else self._sse.flush(), self._decode
            )
            if batch:
                return batch
