"""``ChatStream``: a streamed answer with a commit point, one pump, observers and a guaranteed close.

A provider builds a stream with :meth:`ChatStream.open`, which pulls the first chunks from the
upstream before returning. That makes the **commit point** structural: every failure before the
first chunk (a 200 followed by an error event, a hang before the first token) is raised from
``await call_next(...)``, where retry and failover can still act; once a policy holds a stream,
nothing below it may retry. The first chunk is handed to the caller without extra delay.

**One pump.** The source is an async iterator of *batches* (the chunks one upstream read decoded),
and this class is the only loop that pulls it. Policies that care about a stream after its commit
point do not wrap it in another generator; they attach to it:

* :meth:`observe` registers a :class:`StreamObserver`: ``on_chunk`` for every chunk delivered to
  the caller (cheap and synchronous: it runs on the hot path) and ``on_end`` once, when the stream
  ended, failed or was closed early. An observer that raises is logged once and detached; the
  caller's stream goes on.
* :meth:`limit_until` (an absolute deadline) and :meth:`limit_idle` (the longest wait for the next
  upstream read) contribute deadlines. The stream keeps **one timer** for the earliest of them
  (:mod:`llmrelay.stream_limits`), armed when a wait begins and rearmed only when it fires early,
  instead of a timeout scope per chunk. An expiry cancels the wait (closing the upstream
  connection) and raises the error the limit was registered with (:class:`~llmrelay.errors.DeadlineExceeded`,
  :class:`~llmrelay.errors.StreamTimeout`), which are timeouts, not interruptions.

Example, a policy that counts output tokens at the end::

    class CountTokens(StreamObserver):
        async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
            if error is None and stream.done:
                record(stream.final().usage)

    result = await call_next(request, ctx)
    if isinstance(result, ChatStream):
        result.observe(CountTokens())

* :meth:`rewrite` registers a :class:`ChunkRewriter`, the one way to change what a reader gets:
  each batch read from the source passes through it before delivery (it may hold text back,
  say a PII placeholder split across chunks, and return fewer chunks), and what it still holds
  is delivered when the source ends (``flush``). Observers, the aggregate and ``final()`` see the
  rewritten chunks. PII redaction uses it.
* :meth:`check_end` registers a check of the whole answer, run when the source has ended
  normally and before the end is delivered: an error it returns fails the stream as a source
  failure would (the reader gets it, the SSE writer sends an error event instead of the format's
  terminator, ``on_end`` sees it). Output validation uses it.

Any other failure of the source after the commit point becomes
:class:`~llmrelay.errors.StreamInterrupted`. ``final()`` returns the aggregated
:class:`ChatResponse` once the stream has ended. ``aclose()`` closes the upstream source (its
``finally`` blocks release the HTTP connection) and runs ``on_end``; iterating to the end or to an
error does the same, and so does ``async with``. Readers pull chunks one at a time (``async for``)
or every chunk that is ready at once (:meth:`next_batch`, which the SSE writer uses to send them in
one write).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Protocol

from llmrelay.clock import Clock
from llmrelay.errors import RelayError, StreamInterrupted
from llmrelay.stream_aggregate import Aggregate
from llmrelay.stream_limits import Batch as Batch
from llmrelay.stream_limits import ErrorFactory as ErrorFactory
from llmrelay.stream_limits import StreamLimits
from llmrelay.types import ChatChunk, ChatResponse

log = logging.getLogger("llmrelay.streams")

EndCheck = Callable[[ChatResponse], RelayError | None]


class StreamObserver:
    """Base of everything that watches a stream; override what you need.

    ``on_end`` runs exactly once: ``error`` is ``None`` when the stream ended normally
    (``stream.done`` is then true and ``stream.final()`` works) or was closed before its end
    (``stream.done`` false); otherwise it is the failure the reader sees.
    """

    def on_chunk(self, chunk: ChatChunk) -> None:
        return None

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        return None


class ChunkRewriter(Protocol):
    def rewrite(self, batch: Batch) -> Batch:
        """The chunks to deliver for ``batch`` (may be fewer, or none, while text is held)."""
        ...

    def flush(self) -> Batch:
        """At the source's normal end: the chunks still held back."""
        ...


class ChatStream:
    def __init__(
        self,
        source: AsyncIterator[Batch],
        *,
        id: str,
        model: str,
        created: int,
        provider: str | None = None,
        first: Batch = (),
    ) -> None:
        self._source = source
        self._batch: Batch = first
        self._index = 0
        self.id = id
        self.model = model
        self.created = created
        self.provider = provider
        self.target: str | None = None
        self.replayed = False
        self._aggregate = Aggregate()
        self._exhausted = False  # the source has nothing more (ended, failed or closed)
        self._ended = False  # the source ended normally
        self._finished = False  # on_end has run
        self._committed = False
        self._observers: list[StreamObserver] = []
        self._chunk_observers: list[StreamObserver] = []
        self._end_checks: list[EndCheck] = []
        self._rewriters: list[ChunkRewriter] = []
        self._tail_pending = False  # the source ended; the rewriters' flushed chunks are being read
        self._limits: StreamLimits | None = None  # the one timer, once a limit is registered

    @classmethod
    async def open(
        cls,
        source: AsyncIterator[Batch],
        *,
        id: str,
        model: str,
        created: int,
        provider: str | None = None,
    ) -> ChatStream:
        """Pull until the first chunk so errors before the commit point surface here, then wrap."""
        first: Batch = ()
        try:
            while not first:
                first = await anext(source)
        except StopAsyncIteration:
            pass
        except BaseException:
            await _close(source)
            raise
        stream = cls(source, id=id, model=model, created=created, provider=provider, first=first)
        if not first:
            stream._exhausted = stream._ended = True
        return stream

    @classmethod
    async def open_chunks(
        cls,
        source: AsyncIterator[ChatChunk],
        *,
        id: str,
        model: str,
        created: int,
        provider: str | None = None,
    ) -> ChatStream:
        """:meth:`open` for a source that yields single chunks (each becomes a batch of one)."""
        return await cls.open(_one_by_one(source), id=id, model=model, created=created, provider=provider)

    @classmethod
    def replay(
        cls, chunks: Sequence[ChatChunk], *, id: str, model: str, created: int, provider: str | None = None
    ) -> ChatStream:
        """A stream of chunks already in hand (a stored answer), all in one batch."""
        stream = cls(_Nothing(), id=id, model=model, created=created, provider=provider, first=chunks)
        stream._exhausted = stream._ended = True
        return stream

    # --- attaching -------------------------------------------------------------------------------

    def observe(self, observer: StreamObserver) -> None:
        """Call ``observer`` for each chunk delivered from now on, and once at the end."""
        if self._finished:
            raise RuntimeError("observe() called on a stream that has already ended")
        self._observers.append(observer)
        if type(observer).on_chunk is not StreamObserver.on_chunk:
            self._chunk_observers.append(observer)

    def rewrite(self, rewriter: ChunkRewriter) -> None:
        """Pass every batch read from now on through ``rewriter`` before it is delivered."""
        if self._finished:
            raise RuntimeError("rewrite() called on a stream that has already ended")
        self._rewriters.append(rewriter)
        pending = self._batch[self._index :]  # pulled before the commit point (ChatStream.open)
        if pending:
            rewritten = list(rewriter.rewrite(pending))
            if self._exhausted:  # a replay: its source has nothing more to flush into
                rewritten.extend(rewriter.flush())
            self._batch, self._index = rewritten, 0

    def check_end(self, check: EndCheck) -> None:
        """Run ``check`` on the whole answer when the source ends normally; an error it returns
        ends the stream with that error instead (the reader sees it; ``done`` stays false)."""
        self._end_checks.append(check)

    def limit_until(self, at: float, clock: Clock, error: ErrorFactory) -> None:
        """Fail with ``error()`` if the stream is still being read at ``at`` (on ``clock``)."""
        self._limits_on(clock).until(at, error)

    def limit_idle(self, seconds: float, clock: Clock, error: ErrorFactory) -> None:
        """Fail with ``error()`` when one wait for the upstream's next read exceeds ``seconds``."""
        self._limits_on(clock).idle(seconds, error)

    def _limits_on(self, clock: Clock) -> StreamLimits:
        if self._limits is None:
            self._limits = StreamLimits(clock)
        return self._limits

    # --- reading ---------------------------------------------------------------------------------

    @property
    def committed(self) -> bool:
        """True once a chunk has been handed to the caller: no retry or failover after this."""
        return self._committed

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        while self._index >= len(self._batch):
            if not await self._fill():
                raise StopAsyncIteration
        chunk = self._batch[self._index]
        self._index += 1
        self._deliver(chunk)
        return chunk

    async def next_batch(self) -> Batch:
        """Every chunk ready now, waiting for the upstream only when none is; empty at the end."""
        if self._index >= len(self._batch) and not await self._fill():
            return ()
        batch = self._batch[self._index :] if self._index else self._batch
        self._index = len(self._batch)
        for chunk in batch:
            self._deliver(chunk)
        return batch

    def _deliver(self, chunk: ChatChunk) -> None:
        self._committed = True
        self._aggregate.add(chunk)
        for observer in self._chunk_observers:
            try:
                observer.on_chunk(chunk)
            except Exception:
                self._detach(observer, "on_chunk")

    async def _fill(self) -> bool:
        """Read the next non-empty batch from the source; ``False`` once it has ended."""
        if self._exhausted:
            if self._tail_pending:
                self._tail_pending = False
                return await self._end_normally()
            if not self._finished:
                await self._finish(None)
            return False
        try:
            batch = await self._read()
            while not batch:
                batch = await self._read()
        except StopAsyncIteration:
            self._exhausted = True
            tail = self._flush()
            if tail:
                self._batch, self._index, self._tail_pending = tail, 0, True
                return True
            return await self._end_normally()
        except RelayError as err:
            self._exhausted = True
            if (self._limits is not None and self._limits.expired is not None) or isinstance(
                err, StreamInterrupted
            ):
                await self._finish(err)
                raise
            interrupted = StreamInterrupted(
                f"stream failed after it started: {err.message}", provider=err.provider
            )
            await self._finish(interrupted)
            raise interrupted from err
        except BaseException as err:
            self._exhausted = True
            await self._finish(None if isinstance(err, asyncio.CancelledError) else err)
            raise
        self._batch, self._index = batch, 0
        return True

    async def _read(self) -> Batch:
        limits = self._limits
        batch = await limits.wait(self._source) if limits is not None else await anext(self._source)
        for rewriter in self._rewriters:
            batch = rewriter.rewrite(batch)
        return batch

    def _flush(self) -> Batch:
        tail: list[ChatChunk] = []
        for i, rewriter in enumerate(self._rewriters):
            held = list(rewriter.flush())
            for later in self._rewriters[i + 1 :]:
                held = list(later.rewrite(held))
            tail.extend(held)
        return tail

    async def _end_normally(self) -> bool:
        failure = self._end_failure()
        if failure is not None:
            await self._finish(failure)
            raise failure from None
        self._ended = True
        await self._finish(None)
        return False

    def _end_failure(self) -> RelayError | None:
        if not self._end_checks:
            return None
        answer = self._aggregate.response(
            id=self.id, model=self.model, created=self.created, provider=self.provider, target=self.target
        )
        for check in self._end_checks:
            failure = check(answer)
            if failure is not None:
                return failure
        return None

    # --- ending ----------------------------------------------------------------------------------

    async def _finish(self, error: BaseException | None) -> None:
        """Close the source, stop the timer, and tell every observer (once)."""
        if self._finished:
            return
        self._finished = True
        if self._limits is not None:
            self._limits.stop()
        try:
            await _close(self._source)
        finally:
            for observer in self._observers:
                try:
                    await observer.on_end(self, error)
                except Exception:
                    self._detach(observer, "on_end")

    def _detach(self, observer: StreamObserver, where: str) -> None:
        log.exception("stream observer %s failed in %s; detached", type(observer).__name__, where)
        if observer in self._chunk_observers:
            self._chunk_observers.remove(observer)
        if where == "on_chunk" and observer in self._observers:
            self._observers.remove(observer)

    async def aclose(self) -> None:
        self._exhausted, self._tail_pending = True, False
        self._batch, self._index = (), 0
        await self._finish(None)

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
        """True once the upstream finished normally and every chunk was read (not when closed early)."""
        return self._ended and self._index >= len(self._batch)

    def final(self) -> ChatResponse:
        """The aggregated answer; only valid once the stream has been read to its end."""
        if not self.done:
            raise RuntimeError("final() called before the stream ended")
        return self._aggregate.response(
            id=self.id, model=self.model, created=self.created, provider=self.provider, target=self.target
        )

    async def collect(self) -> ChatResponse:
        """Read the rest of the stream and return the aggregate."""
        async with self:
            while await self.next_batch():
                pass
        return self.final()


async def _close(source: AsyncIterator[Batch]) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        await close()


async def _one_by_one(source: AsyncIterator[ChatChunk]) -> AsyncIterator[Batch]:
    try:
        async for chunk in source:
            yield (chunk,)
    finally:
        await _close(source)  # type: ignore[arg-type]


class _Nothing:
    """A source that has ended (the chunks of a replayed stream are all in its first batch)."""

    def __aiter__(self) -> _Nothing:
        return self

    async def __anext__(self) -> Batch:
        raise StopAsyncIteration
