"""``openai``: OpenAI Chat Completions and Embeddings, and every OpenAI-compatible server.

Thin I/O over the pure codecs in :mod:`llmrelay.wire.openai` and its siblings: build the body, call
the pooled :class:`~llmrelay.providers.http.Upstream`, decode. vLLM, Ollama, llama.cpp, Groq,
Together, Mistral, DeepSeek and OpenRouter are the same provider with another ``base_url``; the
options below cover where they differ from api.openai.com.

``Authorization: Bearer`` is sent only when the target has an ``api_key`` (Ollama and llama.cpp need
none); the key lives in the session's default headers, never in a URL, message or repr.

Azure OpenAI (:mod:`llmrelay.providers.azure`) is this provider with its own paths (:meth:`_path`)
and auth header, built with :func:`upstream_for`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import TargetConfig, TimeoutConfig
from llmrelay.context import Context
from llmrelay.errors import ConnectionFailed, RelayError
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
from llmrelay.wire.openai import MaxTokensField, decode_chat_response, encode_chat_request
from llmrelay.wire.openai_embeddings import (
    EncodingFormat,
    decode_embedding_response,
    encode_embedding_request,
)
from llmrelay.wire.openai_errors import decode_error
from llmrelay.wire.openai_responses_upstream import (
    ResponsesEventDecoder,
    decode_upstream_response,
    encode_upstream_request,
)
from llmrelay.wire.openai_stream import ChatStreamDecoder

DEFAULT_BASE_URL = "https://api.openai.com/v1"

Endpoint = Literal["/chat/completions", "/embeddings", "/responses"]


class OpenAIOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-target options (``targets[i].options``), validated when the provider is created.

    ``max_tokens_param``: ``auto`` sends ``max_completion_tokens`` to api.openai.com (its reasoning
    models refuse ``max_tokens``) and ``max_tokens`` to any other host (what compatible servers know).
    ``stream_usage``: ask for the final usage chunk; turn off for servers that reject
    ``stream_options``. ``embedding_format``: ``base64`` shrinks embedding replies about fourfold
    where the server supports it. ``max_connections`` bounds the upstream's connection pool.
    ``api``: ``responses`` sends chat calls to OpenAI's Responses API (``POST /responses``,
    :mod:`llmrelay.wire.openai_responses_upstream`) instead of Chat Completions.
    """

    max_tokens_param: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto"
    stream_usage: bool = True
    embedding_format: EncodingFormat = "float"
    max_connections: int = 256
    api: Literal["chat_completions", "responses"] = "chat_completions"


class OpenAIProvider:
    name = "openai"

    def __init__(
        self,
        *,
        model: str | None,
        upstream: Upstream,
        options: OpenAIOptions,
        clock: Clock,
        max_tokens_field: MaxTokensField | None = None,
    ):
        self.model = model
        self.options = options
        self._upstream = upstream
        self._clock = clock
        self.max_tokens_field = max_tokens_field or _max_tokens_field(options, upstream.base_url)

    def _path(self, endpoint: Endpoint, model: str) -> str:
        """Where ``endpoint`` lives under the base URL (Azure puts the deployment in the path)."""
        return endpoint

    async def open(self) -> None:
        await self._upstream.open()

    async def aclose(self) -> None:
        await self._upstream.aclose()

    async def chat(self, request: ChatRequest, ctx: Context) -> ChatResponse | ChatStream:
        call = self._responses if self.options.api == "responses" else self._chat
        return await self._upstream.keys.call(lambda key: call(request, ctx, key), request)

    async def _chat(self, request: ChatRequest, ctx: Context, key: str | None) -> ChatResponse | ChatStream:
        model = self.model or request.model
        body = msgspec.json.encode(
            encode_chat_request(
                request,
                model=model,
                max_tokens_field=self.max_tokens_field,
                stream_usage=self.options.stream_usage,
            )
        )
        headers = with_trace({"x-client-request-id": ctx.request_id}, ctx)
        path = self._path("/chat/completions", model)
        if not request.stream:
            answer = await self._post(path, body, headers, key)
            return decode_chat_response(
                answer, provider=self.name, model=model, created=int(self._clock.wall())
            )
        decoder = ChatStreamDecoder(provider=self.name)
        return await self._open_stream(path, body, headers, decoder, key, model=model, terminal="[DONE]")

    async def _responses(
        self, request: ChatRequest, ctx: Context, key: str | None
    ) -> ChatResponse | ChatStream:
        """A chat call through the Responses API (``options.api: responses``)."""
        model = self.model or request.model
        body = msgspec.json.encode(encode_upstream_request(request, model=model))
        headers = with_trace({"x-client-request-id": ctx.request_id}, ctx)
        path = self._path("/responses", model)
        if not request.stream:
            answer = await self._post(path, body, headers, key)
            return decode_upstream_response(answer, provider=self.name, created=int(self._clock.wall()))
        decoder = ResponsesEventDecoder(provider=self.name)
        return await self._open_stream(
            path, body, headers, decoder, key, model=model, terminal="response.completed"
        )

    async def _post(self, path: str, body: bytes, headers: Mapping[str, str], key: str | None) -> bytes:
        """A unary call's body; an error status raised as the canonical error."""
        reply = await self._upstream.post(path, body, headers=headers, key=key)
        if reply.status >= 300:
            raise self._error(reply.status, reply.headers, reply.body)
        return reply.body

    async def _open_stream(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        decoder: ChatStreamDecoder | ResponsesEventDecoder,
        key: str | None,
        *,
        model: str,
        terminal: str,
    ) -> ChatStream:
        stream = await ChatStream.open(
            self._chunks(path, body, headers, decoder, key, terminal=terminal),
            id="",
            model=model,
            created=int(self._clock.wall()),
            provider=self.name,
        )
        # The first chunk has been read, so the upstream's identity is known by now.
        stream.id = decoder.id
        stream.model = decoder.model or model
        if decoder.created is not None:
            stream.created = int(decoder.created)
        return stream

    async def _chunks(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        decoder: ChatStreamDecoder | ResponsesEventDecoder,
        key: str | None,
        *,
        terminal: str,
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """One batch per upstream read; holds the response open while it yields (closing closes it).
        A body that ends before the format's ``terminal`` event is a :class:`ConnectionFailed`."""
        async with self._upstream.stream(path, body, headers=headers, key=key) as reply:
            if reply.status >= 300:
                raise self._error(reply.status, reply.headers, await reply.body())
            batches = SSEBatches(reply, decoder.feed_event, done=lambda: decoder.done)
            while (batch := await batches.next()) is not None:
                yield batch
            if not decoder.done:
                raise ConnectionFailed(
                    f"{self.name} stream from {self._upstream.host} ended before {terminal}",
                    provider=self.name,
                )

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        return None  # no counting endpoint: the caller estimates

    async def embed(self, request: EmbeddingRequest, ctx: Context) -> EmbeddingResponse:
        return await self._upstream.keys.call(lambda key: self._embed(request, ctx, key), request)

    async def _embed(self, request: EmbeddingRequest, ctx: Context, key: str | None) -> EmbeddingResponse:
        model = self.model or request.model
        body = encode_embedding_request(request, model=model, encoding_format=self.options.embedding_format)
        headers = with_trace({"x-client-request-id": ctx.request_id}, ctx)
        answer = await self._post(self._path("/embeddings", model), msgspec.json.encode(body), headers, key)
        return decode_embedding_response(answer, provider=self.name, model=model)

    def _error(self, status: int, headers: dict[str, str], body: bytes) -> RelayError:
        return decode_error(
            status,
            headers,
            body,
            provider=self.name,
            now=self._clock.wall(),
            credentials=self._upstream.credentials,
        )


def _max_tokens_field(options: OpenAIOptions, base_url: str) -> MaxTokensField:
    if options.max_tokens_param != "auto":
        return options.max_tokens_param
    host = urlsplit(base_url).hostname or ""
    return "max_completion_tokens" if host == "api.openai.com" else "max_tokens"


def upstream_for(
    target: TargetConfig,
    timeout: TimeoutConfig,
    options: OpenAIOptions,
    *,
    provider: str,
    keys: KeyRing,
    key_header: str,
    key_prefix: str,
    base_url: str,
) -> Upstream:
    """The pooled upstream of an OpenAI-format target; the key (sent in ``key_header``) overrides
    a configured header of the same name. The keys used and the configured header values are the
    credentials scrubbed from upstream messages."""
    headers = {"content-type": "application/json", **target.headers}
    return Upstream(
        base_url,
        headers=headers,
        connect_timeout=timeout.connect,
        read_timeout=timeout.idle,
        max_connections=options.max_connections,
        provider=provider,
        secrets=target.headers.values(),
        keys=keys,
        key_header=key_header,
        key_prefix=key_prefix,
    )


def create(
    target: TargetConfig, timeout: TimeoutConfig, clock: Clock, *, limits: RateLimits | None = None
) -> OpenAIProvider:
    options = msgspec.convert(target.options, OpenAIOptions, strict=False)  # `${VAR}` fills numbers
    base_url = target.base_url or DEFAULT_BASE_URL
    upstream = upstream_for(
        target,
        timeout,
        options,
        provider="openai",
        keys=KeyRing.of(target, clock, limits),
        key_header="authorization",
        key_prefix="Bearer ",
        base_url=base_url,
    )
    return OpenAIProvider(model=target.model, upstream=upstream, options=options, clock=clock)
