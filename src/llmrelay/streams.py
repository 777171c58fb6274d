"""``ChatStream``: a streamed answer with a commit point, an aggregate, and a guaranteed close.

A provider builds a stream with :meth:`ChatStream.open`, which pulls the first chunk from the
upstream before returning. That makes the **commit point** structural: every failure before the
first chunk (a 200 followed by an error event, a hang before the first token) is raised from
``await call_next(...)``, where retry and failover can still act; once a policy holds a stream,
nothing below it may retry. The first chunk is handed to the caller without extra delay.

``final()`` returns the aggregated :class:`ChatResponse` once the stream has ended. ``aclose()``
closes the upstream source (its ``finally`` blocks release the HTTP connection); iterating to the
end or to an error closes it too, and so does ``async with``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import TracebackType

from llmrelay.errors import RelayError, StreamInterrupted
from llmrelay.types import (
    ChatChunk,
    ChatResponse,
    ContentPart,
    FinishReason,
    Message,
    TextPart,
    ToolCallPart,
    Usage,
)


class ChatStream:
    def __init__(
        self,
        source: AsyncIterator[ChatChunk],
        *,
        id: str,
        model: str,
        created: int,
        provider: str | None = None,
        first: ChatChunk | None = None,
    ) -> None:
        self._source = source
        self._pending = first
        self.id = id
        self.model = model
        self.created = created
        self.provider = provider
        self.target: str | None = None
        self.replayed = False
        self._aggregate = _Aggregate()
        self._done = False
        self._ended = False
        self._committed = False

    @classmethod
    async def open(
        cls,
        source: AsyncGenerator[ChatChunk, None],
        *,
        id: str,
        model: str,
        created: int,
        provider: str | None = None,
    ) -> ChatStream:
        """Pull the first chunk so errors before the commit point surface here, then wrap."""
        try:
            first = await anext(source)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await source.aclose()
            raise
        stream = cls(source, id=id, model=model, created=created, provider=provider, first=first)
        if first is None:
            stream._done = stream._ended = True
        return stream

    def derive(self, transform: Callable[[ChatStream], AsyncGenerator[ChatChunk, None]]) -> ChatStream:
        """A stream with the same identity whose chunks come from ``transform(self)``.

        Policies use it to watch or bound a stream (deadlines, metrics); closing the derived stream
        closes this one, because ``transform`` iterates it inside its own ``async with``.
        """
        derived = ChatStream(
            _closing(self, transform),
            id=self.id,
            model=self.model,
            created=self.created,
            provider=self.provider,
        )
        derived.target = self.target
        derived.replayed = self.replayed
        return derived

    @property
    def committed(self) -> bool:
        """True once a chunk has been handed to the caller: no retry or failover after this."""
        return self._committed

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._pending is not None:
            chunk, self._pending = self._pending, None
        elif self._done:
            raise StopAsyncIteration
        else:
            try:
                chunk = await anext(self._source)
            except StopAsyncIteration:
                self._done = self._ended = True
                raise
            except RelayError as err:
                await self.aclose()
                if isinstance(err, StreamInterrupted):
                    raise
                raise StreamInterrupted(
                    f"stream failed after it started: {err.message}",
                    provider=err.provider,
                ) from err
            except BaseException:
                await self.aclose()
                raise
        self._committed = True
        self._aggregate.add(chunk)
        return chunk

    async def aclose(self) -> None:
        self._done = True
        self._pending = None
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def done(self) -> bool:
        """True once the upstream finished normally (not when closed early or failed)."""
        return self._ended and self._pending is None

    def final(self) -> ChatResponse:
        """The aggregated answer; only valid once the stream has been read to its end."""
        if not self.done:
            raise RuntimeError("final() called before the stream ended")
        return self._aggregate.response(self)

    async def collect(self) -> ChatResponse:
        """Read the rest of the stream and return the aggregate."""
        async with self:
            async for _ in self:
                pass
        return self.final()


async def _closing(
    inner: ChatStream, transform: Callable[[ChatStream], AsyncGenerator[ChatChunk, None]]
) -> AsyncGenerator[ChatChunk, None]:
    async with inner:
        gen = transform(inner)
        try:
            async for chunk in gen:
                yield chunk
        finally:
            await gen.aclose()


class _Aggregate:
    """Folds chunks into one message: text concatenated, tool-call fragments joined by index."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}
        self.call_ids: dict[int, str] = {}
        self.call_names: dict[int, str] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None

    def add(self, chunk: ChatChunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        for delta in chunk.tool_calls:
            self.calls.setdefault(delta.index, []).append(delta.arguments)
            if delta.id:
                self.call_ids[delta.index] = delta.id
            if delta.name:
                self.call_names[delta.index] = delta.name
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    def response(self, stream: ChatStream) -> ChatResponse:
        parts: list[ContentPart] = []
        if self.text:
            parts.append(TextPart(text="".join(self.text)))
        for index in sorted(self.calls):
            parts.append(
                ToolCallPart(
                    id=self.call_ids.get(index, f"call_{index}"),
                    name=self.call_names.get(index, ""),
                    arguments="".join(self.calls[index]) or "{}",
                )
            )
        return ChatResponse(
            id=stream.id,
            model=stream.model,
            created=stream.created,
            message=Message(role="assistant", content=tuple(parts)),
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
            provider=stream.provider,
            target=stream.target,
        )
