"""``gemini``: Google's Generative Language API (Gemini models) as a provider.

Thin I/O over the pure codec in :mod:`llmrelay.wire.gemini`: encode the canonical request, POST it
through the shared pooled :class:`~llmrelay.providers.http.Upstream`, decode the reply or the SSE
stream, and map every non-2xx reply to the canonical error tree.

The API key travels in the ``x-goog-api-key`` header, never as the ``?key=`` query parameter the
API also accepts: URLs end up in logs, proxies and error messages, headers do not. The target's own
``model`` is always the one sent; the caller's alias never reaches Google.

Options (``targets[].options``): ``api_version`` (default ``v1beta``, where tools, JSON schema
output and thinking live). A target without ``model`` uses ``gemini-2.5-flash``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Annotated
from urllib.parse import quote

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import TargetConfig, TimeoutConfig
from llmrelay.context import Context
from llmrelay.errors import RelayError
from llmrelay.providers.http import Upstream, with_trace
from llmrelay.providers.keyring import KeyRing
from llmrelay.providers.sse_batches import SSEBatches
from llmrelay.stores.rates import RateLimits
from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)
from llmrelay.wire.gemini import (
    GeminiStreamDecoder,
    decode_chat_response,
    decode_embedding_response,
    decode_error,
    encode_chat_request,
    encode_embedding_request,
    model_id,
)
from llmrelay.wire.token_count import decode_token_count

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_MODEL = "gemini-2.5-flash"
_NO_HEADERS: dict[str, str] = {}


class GeminiOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    api_version: Annotated[str, msgspec.Meta(pattern=r"^v[0-9]+((alpha|beta)[0-9]*)?$")] = "v1beta"


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        target: TargetConfig,
        options: GeminiOptions,
        timeout: TimeoutConfig,
        clock: Clock,
        limits: RateLimits | None = None,
    ) -> None:
        self.model = model_id(target.model or DEFAULT_MODEL)
        self._clock = clock
        self._prefix = f"/{options.api_version}/models/{quote(self.model, safe='')}"
        headers = {"content-type": "application/json"}
        headers.update(target.headers)
        self._upstream = Upstream(
            target.base_url or DEFAULT_BASE_URL,
            headers=headers,
            connect_timeout=timeout.connect,
            read_timeout=timeout.idle,
            provider=self.name,
            secrets=target.headers.values(),
            keys=KeyRing.of(target, clock, limits),
            key_header="x-goog-api-key",
        )

    async def open(self) -> None:
        await self._upstream.open()

    async def aclose(self) -> None:
        await self._upstream.aclose()

    async def chat(self, request: ChatRequest, ctx: Context) -> ChatResponse | ChatStream:
        return await self._upstream.keys.call(lambda key: self._chat(request, ctx, key), request)

    async def _chat(self, request: ChatRequest, ctx: Context, key: str | None) -> ChatResponse | ChatStream:
        body = msgspec.json.encode(encode_chat_request(request))
        created = int(self._clock.wall())
        if not request.stream:
            headers = with_trace(_NO_HEADERS, ctx)
            reply = await self._upstream.post(
                f"{self._prefix}:generateContent", body, headers=headers, key=key
            )
            if not 200 <= reply.status < 300:
                raise self._error(reply.status, reply.headers, reply.body)
            return decode_chat_response(reply.body, model=self.model, created=created)
        decoder = GeminiStreamDecoder(model=self.model)
        stream = await ChatStream.open(
            self._stream(body, with_trace(_NO_HEADERS, ctx), decoder, key),
            id=f"gemini-{ctx.request_id}",
            model=self.model,
            created=created,
            provider=self.name,
        )
        # The first event has arrived: label the stream as the upstream did.
        stream.id = decoder.response_id or stream.id
        stream.model = decoder.model
        return stream

    async def _stream(
        self, body: bytes, headers: Mapping[str, str], decoder: GeminiStreamDecoder, key: str | None
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """One batch per upstream read; holds the response open while it yields (closing closes it)."""
        path = f"{self._prefix}:streamGenerateContent?alt=sse"
        async with self._upstream.stream(path, body, headers=headers, key=key) as reply:
            if not 200 <= reply.status < 300:
                raise self._error(reply.status, reply.headers, await reply.body())
            batches = SSEBatches(reply, decoder.feed_event)
            while (batch := await batches.next()) is not None:
                yield batch
            last = decoder.end()
            if last:
                yield last

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        """``:countTokens`` with the whole ``generateContent`` request, so that the system
        instruction and the tools are counted too (``contents`` alone would leave them out)."""
        generate = {"model": f"models/{self.model}", **encode_chat_request(request)}
        body = msgspec.json.encode({"generateContentRequest": generate})
        reply = await self._upstream.post(f"{self._prefix}:countTokens", body, headers=_NO_HEADERS)
        if not 200 <= reply.status < 300:
            raise self._error(reply.status, reply.headers, reply.body)
        return decode_token_count(reply.body, "totalTokens", provider=self.name)

    async def embed(self, request: EmbeddingRequest, ctx: Context) -> EmbeddingResponse:
        return await self._upstream.keys.call(lambda key: self._embed(request, ctx, key), request)

    async def _embed(self, request: EmbeddingRequest, ctx: Context, key: str | None) -> EmbeddingResponse:
        body = msgspec.json.encode(encode_embedding_request(request, model=self.model))
        reply = await self._upstream.post(
            f"{self._prefix}:batchEmbedContents", body, headers=with_trace(_NO_HEADERS, ctx), key=key
        )
        if not 200 <= reply.status < 300:
            raise self._error(reply.status, reply.headers, reply.body)
        return decode_embedding_response(reply.body, model=self.model)

    def _error(self, status: int, headers: Mapping[str, str], body: bytes) -> RelayError:
        return decode_error(
            status,
            headers,
            body,
            provider=self.name,
            now=self._clock.wall(),
            credentials=self._upstream.credentials,
        )


def create(
    target: TargetConfig, timeout: TimeoutConfig, clock: Clock, *, limits: RateLimits | None = None
) -> GeminiProvider:
    options = msgspec.convert(target.options, GeminiOptions, strict=False)  # `${VAR}` fills numbers
    return GeminiProvider(target, options, timeout, clock, limits)
