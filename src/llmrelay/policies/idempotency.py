"""Idempotency: one answer per ``Idempotency-Key`` (request scope, after validation).

Semantics follow the IETF httpapi Idempotency-Key draft. The key (``ctx.idempotency_key``, already
scoped to the caller) maps to a record holding a fingerprint of the canonical request:

* first arrival claims the key with ``set_if_absent`` (an in-flight marker with a lease), calls
  through, and stores the answer for ``ttl`` (default 24 h);
* the same key and fingerprint later replays the stored answer without calling upstream; a
  stream is stored as its chunks and replayed as a stream (``replayed`` is set for the server);
* a duplicate arriving while the first is in flight waits: in this process it joins the first
  call's future directly (shielded, so a joiner that gives up never cancels the first call); across
  replicas it polls the store with backoff on the injected clock. Either way it waits at most
  ``wait`` seconds and never past the deadline, then fails with :class:`Conflict`;
* the same key with another fingerprint is :class:`UnprocessableEntity`, also while in flight;
* a store that cannot be reached when the key is looked up or claimed is a 503
  (``idempotency_store_unavailable``): running the call anyway could run a duplicate twice;
* a failed call, a stream that did not end normally or one closed before it was read stores
  nothing and frees the key; whatever happens (a store error while keeping, a cancellation), the
  in-flight entry of this process is removed and its joiners are released.

On a stream the policy is an observer (:class:`~llmrelay.streams.StreamObserver`): it records the
chunks delivered to the caller and stores them when the stream ends normally.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Literal

import msgspec

from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import Conflict, RelayError, UnprocessableEntity
from llmrelay.service import Request, Result, Service
from llmrelay.stores.base import KV
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import ChatChunk, ChatResponse, EmbeddingResponse

log = logging.getLogger("llmrelay.idempotency")


class _Stored(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    fingerprint: str
    state: Literal["pending", "done"]
    response: ChatResponse | None = None
    embedding: EmbeddingResponse | None = None
    chunks: list[ChatChunk] | None = None
    stream_id: str = ""
    stream_model: str = ""
    stream_created: int = 0
    provider: str | None = None
    target: str | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Stored).decode


class _Flight:
    """A call in flight in this process: its fingerprint, and the answer its joiners wait for."""

    __slots__ = ("done", "fingerprint")

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.done: asyncio.Future[_Stored | None] = asyncio.get_running_loop().create_future()


class Idempotency:
    def __init__(
        self,
        kv: KV,
        clock: Clock,
        *,
        ttl: float = 86_400.0,
        wait: float = 60.0,
        lease: float = 600.0,
    ) -> None:
        self._kv = kv
        self._clock = clock
        self._ttl = ttl
        self._wait = wait
        self._lease = lease
        self._inflight: dict[str, _Flight] = {}

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if ctx.idempotency_key is None:
            return await call_next(request, ctx)
        key = "idem:" + ctx.idempotency_key
        fingerprint = hashlib.sha256(_encode(request)).hexdigest()
        give_up_at = self._clock.now() + self._wait
        if ctx.deadline is not None:
            give_up_at = min(give_up_at, ctx.deadline)
        delay = 0.02
        while True:
            flight = self._inflight.get(key)
            if flight is not None:
                stored = await self._join(flight, fingerprint, give_up_at)
                if stored is not None:
                    return _replay(_same(stored, fingerprint))
                continue  # the first call failed and freed the key: claim it
            raw, claimed = await self._claim(key, fingerprint, ctx.request_id)
            if raw is not None:
                stored = _same(_decode(raw), fingerprint)
                if stored.state == "done":
                    return _replay(stored)
            elif claimed:
                return await self._first(key, fingerprint, request, ctx, call_next)
            left = give_up_at - self._clock.now()
            if left <= 0:
                raise _in_use()
            await self._clock.sleep(min(delay, left))
            delay = min(delay * 2, 1.0)

    async def _claim(self, key: str, fingerprint: str, request_id: str) -> tuple[bytes | None, bool]:
        """The key's record, or (none there) whether this call claimed it. A store that cannot be
        reached is a 503: without it a duplicate could run twice, which the caller's key forbids."""
        try:
            raw = await self._kv.get(key)
            if raw is not None:
                return raw, False
            return None, await self._kv.set_if_absent(key, _pending(fingerprint), ttl=self._lease)
        except Exception as err:
            log.warning(
                "request %s: the idempotency store cannot be reached (%s)", request_id, type(err).__name__
            )
            raise RelayError(
                "the idempotency store cannot be reached; retry the request",
                status=503,
                code="idempotency_store_unavailable",
            ) from err

    async def _join(self, flight: _Flight, fingerprint: str, give_up_at: float) -> _Stored | None:
        if flight.fingerprint != fingerprint:
            raise _mismatch()
        try:
            async with self._clock.timeout(give_up_at - self._clock.now()):
                return await asyncio.shield(flight.done)
        except TimeoutError:
            raise _in_use() from None

    async def _first(
        self, key: str, fingerprint: str, request: Request, ctx: Context, call_next: Service
    ) -> Result:
        flight = _Flight(fingerprint)
        self._inflight[key] = flight
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await self._abandon(key, flight)
            raise
        if isinstance(result, ChatStream):
            result.observe(_Recorder(self, key, flight))
            return result
        if isinstance(result, ChatResponse):
            stored = _Stored(fingerprint=fingerprint, state="done", response=result)
        else:
            stored = _Stored(fingerprint=fingerprint, state="done", embedding=result)
        await self._keep(key, stored, flight)
        return result

    async def _keep(self, key: str, stored: _Stored, flight: _Flight) -> None:
        """Store the answer; joiners in this process get it even if the store fails."""
        try:
            await asyncio.shield(self._kv.set(key, _encode(stored), ttl=self._ttl))
        except Exception:
            log.exception("could not store the answer for an Idempotency-Key; duplicates will run again")
            await self._release(key)
        finally:
            self._settle(key, flight, stored)

    async def _abandon(self, key: str, flight: _Flight) -> None:
        self._settle(key, flight, None)
        await self._release(key)

    async def _release(self, key: str) -> None:
        try:
            await asyncio.shield(self._kv.delete(key))
        except Exception:
            log.exception("could not free an Idempotency-Key; it frees itself when its lease ends")

    def _settle(self, key: str, flight: _Flight, stored: _Stored | None) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        if not flight.done.done():
            flight.done.set_result(stored)


class _Recorder(StreamObserver):
    """Keeps the chunks the caller received; stores them once the stream has ended normally."""

    def __init__(self, policy: Idempotency, key: str, flight: _Flight) -> None:
        self._policy = policy
        self._key = key
        self._flight = flight
        self._chunks: list[ChatChunk] = []

    def on_chunk(self, chunk: ChatChunk) -> None:
        self._chunks.append(chunk)

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if error is not None or not stream.done:
            await self._policy._abandon(self._key, self._flight)
            return
        stored = _Stored(
            fingerprint=self._flight.fingerprint,
            state="done",
            chunks=self._chunks,
            stream_id=stream.id,
            stream_model=stream.model,
            stream_created=stream.created,
            provider=stream.provider,
            target=stream.target,
        )
        await self._policy._keep(self._key, stored, self._flight)


def _pending(fingerprint: str) -> bytes:
    return _encode(_Stored(fingerprint=fingerprint, state="pending"))


def _same(stored: _Stored, fingerprint: str) -> _Stored:
    if stored.fingerprint != fingerprint:
        raise _mismatch()
    return stored


def _mismatch() -> UnprocessableEntity:
    return UnprocessableEntity(
        "this Idempotency-Key was already used with a different request body",
        code="idempotency_key_mismatch",
    )


def _in_use() -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still in progress; retry later",
        code="idempotency_key_in_use",
    )


def _replay(stored: _Stored) -> Result:
    if stored.response is not None:
        return msgspec.structs.replace(stored.response, replayed=True)
    if stored.embedding is not None:
        return msgspec.structs.replace(stored.embedding, replayed=True)
    stream = ChatStream.replay(
        stored.chunks or [],
        id=stored.stream_id,
        model=stored.stream_model,
        created=stored.stream_created,
        provider=stored.provider,
    )
    stream.target = stored.target
    stream.replayed = True
    return stream
