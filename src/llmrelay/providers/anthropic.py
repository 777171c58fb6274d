"""``anthropic``: the Messages API (``POST /v1/messages``), unary and streamed.

Thin I/O: the body comes from :mod:`llmrelay.wire.anthropic`, replies are decoded there and in
:mod:`llmrelay.wire.anthropic_stream`, every non-2xx becomes a canonical error through
:func:`~llmrelay.wire.anthropic_errors.decode_error`. The key travels in ``x-api-key`` (never in a
URL); ``anthropic-version`` pins the wire format this codec speaks. The target's own model is sent,
whatever alias the caller used.

A stream holds the HTTP response open while it yields and closes it in ``finally`` (``async with``),
so closing the :class:`ChatStream` early cancels the upstream generation. An ``error`` event before
the first chunk raises from :meth:`AnthropicProvider.chat`, where retry and failover still act; a
stream that ends without ``message_stop`` raises :class:`ConnectionFailed`.

Options (``target.options``): ``default_max_tokens`` (Anthropic requires ``max_tokens``; see
:data:`~llmrelay.wire.anthropic.DEFAULT_MAX_TOKENS`), ``anthropic_version``, ``json_schema_mode``
(``tool`` or ``native``, see the codec) and ``max_connections`` of the pool.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Annotated

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import TargetConfig, TimeoutConfig
from llmrelay.context import Context
from llmrelay.errors import ConfigError, InvalidRequest
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
from llmrelay.wire.anthropic import (
    DEFAULT_MAX_TOKENS,
    JsonSchemaMode,
    answer_tool,
    decode_chat_response,
    encode_chat_request,
)
from llmrelay.wire.anthropic_errors import decode_error
from llmrelay.wire.anthropic_stream import AnthropicStreamDecoder
from llmrelay.wire.token_count import decode_token_count

DEFAULT_BASE_URL = "https://api.anthropic.com"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
_COUNTED = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking"})
"""The fields of a Messages body that ``count_tokens`` takes (it refuses ``max_tokens`` & co)."""


class AnthropicOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default_max_tokens: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_MAX_TOKENS
    anthropic_version: str = "2023-06-01"
    json_schema_mode: JsonSchemaMode = "tool"
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 256


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, model: str, upstream: Upstream, options: AnthropicOptions, clock: Clock):
        self.model = model
        self.options = options
        self._upstream = upstream
        self._clock = clock

    async def open(self) -> None:
        await self._upstream.open()

    async def aclose(self) -> None:
        await self._upstream.aclose()

    async def chat(self, request: ChatRequest, ctx: Context) -> ChatResponse | ChatStream:
        return await self._upstream.keys.call(lambda key: self._chat(request, ctx, key), request)

    async def _chat(self, request: ChatRequest, ctx: Context, key: str | None) -> ChatResponse | ChatStream:
        mode = self.options.json_schema_mode
        body = encode_chat_request(
            request,
            model=self.model,
            default_max_tokens=self.options.default_max_tokens,
            json_schema_mode=mode,
        )
        payload = msgspec.json.encode(body)
        json_tool = answer_tool(request, mode)
        if not request.stream:
            reply = await self._upstream.post(MESSAGES_PATH, payload, headers=with_trace({}, ctx), key=key)
            if not 200 <= reply.status < 300:
                raise decode_error(
                    reply.status,
                    reply.headers,
                    reply.body,
                    provider=self.name,
                    now=self._clock.wall(),
                    credentials=self._upstream.credentials,
                )
            return decode_chat_response(
                reply.body, created=int(self._clock.wall()), json_tool=json_tool, provider=self.name
            )
        decoder = AnthropicStreamDecoder(json_tool=json_tool, provider=self.name)
        stream = await ChatStream.open(
            self._events(payload, with_trace({}, ctx), decoder, key),
            id="",
            model=self.model,
            created=int(self._clock.wall()),
            provider=self.name,
        )
        # The first chunk was pulled, so message_start has been read.
        stream.id = decoder.id or stream.id
        stream.model = decoder.model or stream.model
        return stream

    async def _events(
        self, payload: bytes, headers: Mapping[str, str], decoder: AnthropicStreamDecoder, key: str | None
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """One batch per upstream read; holds the response open while it yields (closing closes it)."""
        async with self._upstream.stream(MESSAGES_PATH, payload, headers=headers, key=key) as reply:
            if not 200 <= reply.status < 300:
                body = await reply.body()
                raise decode_error(
                    reply.status, reply.headers, body, provider=self.name, now=self._clock.wall()
                )
            batches = SSEBatches(reply, decoder.feed_event, done=lambda: decoder.done)
            while (batch := await batches.next()) is not None:
                yield batch
            decoder.finish()

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        """``POST /v1/messages/count_tokens`` with the body :meth:`chat` would send."""
        body = encode_chat_request(
            request,
            model=self.model,
            default_max_tokens=self.options.default_max_tokens,
            json_schema_mode=self.options.json_schema_mode,
        )
        payload = msgspec.json.encode({k: v for k, v in body.items() if k in _COUNTED})
        reply = await self._upstream.post(COUNT_TOKENS_PATH, payload, headers={})
        if not 200 <= reply.status < 300:
            raise decode_error(
                reply.status,
                reply.headers,
                reply.body,
                provider=self.name,
                now=self._clock.wall(),
                credentials=self._upstream.credentials,
            )
        return decode_token_count(reply.body, "input_tokens", provider=self.name)

    async def embed(self, request: EmbeddingRequest, ctx: Context) -> EmbeddingResponse:
        raise InvalidRequest(
            "anthropic has no embeddings API; route embeddings to an openai or gemini target",
            provider=self.name,
        )


def create(
    target: TargetConfig, timeout: TimeoutConfig, clock: Clock, *, limits: RateLimits | None = None
) -> AnthropicProvider:
    options = msgspec.convert(target.options, AnthropicOptions, strict=False)  # `${VAR}` fills numbers
    if not target.model:
        raise ConfigError("an anthropic target needs `model` (e.g. claude-haiku-4-5)")
    headers = {
        "anthropic-version": options.anthropic_version,
        "content-type": "application/json",
        "accept": "application/json",
    }
    keys = KeyRing.of(target, clock, limits)
    if not keys and not any(h.lower() in ("x-api-key", "authorization") for h in target.headers):
        raise ConfigError("an anthropic target needs `api_key` (or an auth header in `headers`)")
    headers.update(target.headers)
    upstream = Upstream(
        target.base_url or DEFAULT_BASE_URL,
        headers=headers,
        connect_timeout=timeout.connect,
        read_timeout=timeout.idle,
        max_connections=options.max_connections,
        provider="anthropic",
        secrets=target.headers.values(),
        keys=keys,
        key_header="x-api-key",
    )
    return AnthropicProvider(target.model, upstream, options, clock)
