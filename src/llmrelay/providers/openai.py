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
from llmrelay.providers.sse_batches import SSEBatches
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
from llmrelay.wire.openai_stream import ChatStreamDecoder

DEFAULT_BASE_URL = "https://api.openai.com/v1"

Endpoint = Literal["/chat/completions", "/embeddings"]


class OpenAIOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-target options (``targets[i].options``), validated when the provider is created.

    ``max_tokens_param``: ``auto`` sends ``max_completion_tokens`` to api.openai.com (its reasoning
    models refuse ``max_tokens``) and ``max_tokens`` to any other host (what compatible servers know).
    ``stream_usage``: ask for the final usage chunk; turn off for servers that reject
    ``stream_options``. ``embedding_format``: ``base64`` shrinks embedding replies about fourfold
    where the server supports it. ``max_connections`` bounds the upstream's connection pool.
    """

    max_tokens_param: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto"
    stream_usage: bool = True
    embedding_format: EncodingFormat = "float"
    max_connections: int = 256


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
            reply = await self._upstream.post(path, body, headers=headers)
            if reply.status >= 300:
                raise self._error(reply.status, reply.headers, reply.body)
            return decode_chat_response(
                reply.body, provider=self.name, model=model, created=int(self._clock.wall())
            )
        decoder = ChatStreamDecoder(provider=self.name)
        stream = await ChatStream.open(
            self._chunks(path, body, headers, decoder),
            id="",
            model=model,
            created=int(self._clock.wall()),
            provider=self.name,
        )
        # The first chunk has been read, so the upstream's identity is known by now.
        stream.id = decoder.id
        stream.model = decoder.model or model
        if decoder.created is not None:
            stream.created = decoder.created
        return stream

    async def _chunks(
        self, path: str, body: bytes, headers: Mapping[str, str], decoder: ChatStreamDecoder
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """One batch per upstream read; holds the response open while it yields (closing closes it)."""
        async with self._upstream.stream(path, body, headers=headers) as reply:
            if reply.status >= 300:
                raise self._error(reply.status, reply.headers, await reply.body())
            batches = SSEBatches(reply, decoder.feed_event, done=lambda: decoder.done)
            while (batch := await batches.next()) is not None:
                yield batch
            if not decoder.done:
                raise ConnectionFailed(
                    f"{self.name} stream from {self._upstream.host} ended before [DONE]",
                    provider=self.name,
                )

    async def embed(self, request: EmbeddingRequest, ctx: Context) -> EmbeddingResponse:
        model = self.model or request.model
        body = encode_embedding_request(request, model=model, encoding_format=self.options.embedding_format)
        reply = await self._upstream.post(
            self._path("/embeddings", model),
            msgspec.json.encode(body),
            headers=with_trace({"x-client-request-id": ctx.request_id}, ctx),
        )
        if reply.status >= 300:
            raise self._error(reply.status, reply.headers, reply.body)
        return decode_embedding_response(reply.body, provider=self.name, model=model)

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
    api_key: str | None,
    auth: Mapping[str, str],
    base_url: str,
) -> Upstream:
    """The pooled upstream of an OpenAI-format target; ``auth`` (the header that carries
    ``api_key``) overrides a configured header of the same name. The key and the configured header
    values are the credentials scrubbed from upstream messages."""
    headers = {"content-type": "application/json", **target.headers, **auth}
    return Upstream(
        base_url,
        headers=headers,
        connect_timeout=timeout.connect,
        read_timeout=timeout.idle,
        max_connections=options.max_connections,
        provider=provider,
        secrets=(api_key, *target.headers.values()),
    )


def create(target: TargetConfig, timeout: TimeoutConfig, clock: Clock) -> OpenAIProvider:
    options = msgspec.convert(target.options, OpenAIOptions, strict=False)  # `${VAR}` fills numbers
    api_key = target.api_key.reveal() if target.api_key is not None else None
    auth = {"authorization": f"Bearer {api_key}"} if api_key is not None else {}
    base_url = target.base_url or DEFAULT_BASE_URL
    upstream = upstream_for(
        target, timeout, options, provider="openai", api_key=api_key, auth=auth, base_url=base_url
    )
    return OpenAIProvider(model=target.model, upstream=upstream, options=options, clock=clock)
