"""Idempotency: one answer per ``Idempotency-Key`` (request scope, after validation).

Semantics follow the IETF httpapi Idempotency-Key draft. The key (``ctx.idempotency_key``, already
scoped to the caller) maps to a record holding a fingerprint of the canonical request:

* first arrival claims the key with ``set_if_absent`` (an in-flight marker with a lease), calls
  through, and stores the answer for ``ttl`` (default 24 h);
* the same key and fingerprint later replays the stored answer without calling upstream; a
  stream is stored as its chunks and replayed as a stream (``replayed`` is set for the server);
* a duplicate arriving while the first is in flight waits: in this process it joins the first
  call's future directly; across replicas it polls the store with backoff on the injected clock,
  for at most ``wait`` seconds and never past the deadline, then fails with :class:`Conflict`;
* the same key with another fingerprint is :class:`UnprocessableEntity`;
* a failed call (or a stream that did not end normally) stores nothing and frees the key.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator
from typing import Literal

import msgspec

from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import Conflict, UnprocessableEntity
from llmrelay.service import Request, Result, Service
from llmrelay.stores.base import KV
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatResponse, EmbeddingResponse


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
        self._inflight: dict[str, asyncio.Future[_Stored | None]] = {}

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if ctx.idempotency_key is None:
            return await call_next(request, ctx)
        key = "idem:" + ctx.idempotency_key
        fingerprint = hashlib.sha256(_encode(request)).hexdigest()
        give_up_at = self._clock.now() + self._wait
        delay = 0.02
        while True:
            joined = self._inflight.get(key)
            if joined is not None:
                stored = await asyncio.shield(joined)
                if stored is not None:
                    return await _replay(_same(stored, fingerprint))
                continue
            raw = await self._kv.get(key)
            if raw is not None:
                stored = _same(_decode(raw), fingerprint)
                if stored.state == "done":
                    return await _replay(stored)
            elif await self._kv.set_if_absent(key, _pending(fingerprint), ttl=self._lease):
                return await self._first(key, fingerprint, request, ctx, call_next)
            remaining = ctx.remaining()
            if self._clock.now() >= give_up_at or (remaining is not None and remaining <= delay):
                raise Conflict(
                    "a request with this Idempotency-Key is still in progress; retry later",
                    code="idempotency_key_in_use",
                )
            await self._clock.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _first(
        self, key: str, fingerprint: str, request: Request, ctx: Context, call_next: Service
    ) -> Result:
        done: asyncio.Future[_Stored | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await self._abandon(key, done)
            raise
        if isinstance(result, ChatStream):
            return result.derive(lambda inner: self._recording(inner, key, fingerprint, done))
        if isinstance(result, ChatResponse):
            stored = _Stored(fingerprint=fingerprint, state="done", response=result)
        else:
            stored = _Stored(fingerprint=fingerprint, state="done", embedding=result)
        await self._keep(key, stored, done)
        return result

    async def _recording(
        self, stream: ChatStream, key: str, fingerprint: str, done: asyncio.Future[_Stored | None]
    ) -> AsyncGenerator[ChatChunk, None]:
        chunks: list[ChatChunk] = []
        try:
            async for chunk in stream:
                chunks.append(chunk)
                yield chunk
        except BaseException:
            await self._abandon(key, done)
            raise
        if not stream.done:  # closed early: nothing complete to store
            await self._abandon(key, done)
            return
        stored = _Stored(
            fingerprint=fingerprint,
            state="done",
            chunks=chunks,
            stream_id=stream.id,
            stream_model=stream.model,
            stream_created=stream.created,
            provider=stream.provider,
            target=stream.target,
        )
        await self._keep(key, stored, done)

    async def _keep(self, key: str, stored: _Stored, done: asyncio.Future[_Stored | None]) -> None:
        await self._kv.set(key, _encode(stored), ttl=self._ttl)
        self._inflight.pop(key, None)
        done.set_result(stored)

    async def _abandon(self, key: str, done: asyncio.Future[_Stored | None]) -> None:
        self._inflight.pop(key, None)
        if not done.done():
            done.set_result(None)
        await asyncio.shield(self._kv.delete(key))


def _pending(fingerprint: str) -> bytes:
    return _encode(_Stored(fingerprint=fingerprint, state="pending"))


def _same(stored: _Stored, fingerprint: str) -> _Stored:
    if stored.fingerprint != fingerprint:
        raise UnprocessableEntity(
            "this Idempotency-Key was already used with a different request body",
            code="idempotency_key_mismatch",
        )
    return stored


async def _replay(stored: _Stored) -> Result:
    if stored.response is not None:
        return msgspec.structs.replace(stored.response, replayed=True)
    if stored.embedding is not None:
        return msgspec.structs.replace(stored.embedding, replayed=True)
    stream = await ChatStream.open(
        _chunks(stored.chunks or []),
        id=stored.stream_id,
        model=stored.stream_model,
        created=stored.stream_created,
        provider=stored.provider,
    )
    stream.target = stored.target
    stream.replayed = True
    return stream


async def _chunks(chunks: list[ChatChunk]) -> AsyncGenerator[ChatChunk, None]:
    for chunk in chunks:
        yield chunk
