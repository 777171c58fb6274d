"""``mock``: a real provider that needs no network and no key.

It answers deterministically, so demos, docs and tests can exercise the whole pipeline: by default
it echoes the last user message; ``options.text`` scripts the reply. It can wait (``latency`` before
the first token, ``chunk_delay`` between chunks, on the injected clock), split its answer into
``chunks``, call a tool when the request forces one, embed text into stable unit vectors, and inject
failures: the first ``fail_times`` calls (or a ``fail_rate`` share, seeded) raise the canonical error
for ``fail_status``; ``fail_after_chunks`` breaks a stream after that many chunks.

Structured output is honoured, so code that parses answers runs against the mock: a ``json_object``
format gets a JSON object (the scripted text when it is one, else ``{"text": <reply>}``), a
``json_schema`` format and a forced tool call get the minimal instance of their schema
(:mod:`llmrelay.providers.mock_json`). Provider-only knobs (``extensions``) are ignored: the mock
stands in for every provider and models none of their knobs.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import AsyncGenerator
from typing import Annotated

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import TargetConfig, TimeoutConfig
from llmrelay.context import Context, new_request_id
from llmrelay.errors import ConnectionFailed, InvalidRequest, error_for_status
from llmrelay.providers.mock_json import minimal_instance
from llmrelay.stores.rates import RateLimits
from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    Message,
    ResponseFormat,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)

MAX_EMBEDDING_FLOATS = 2**18
"""Floats one mock embedding request may return (e.g. 64 x 4096, 2048 x 128): about 5 MB of JSON
and ~10 ms of encoding, so a demo request cannot hold the server's event loop for seconds."""


class MockOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: str | None = None
    latency: float = 0.0
    chunk_delay: float = 0.0
    chunks: int = 0
    dimensions: Annotated[int, msgspec.Meta(ge=1)] = 8
    fail_status: int = 503
    fail_times: int = 0
    fail_rate: float = 0.0
    fail_after_chunks: int | None = None
    seed: int = 0


class MockProvider:
    name = "mock"

    def __init__(self, model: str, options: MockOptions, clock: Clock) -> None:
        self.model = model
        self.options = options
        self._clock = clock
        self._rand = random.Random(options.seed)
        self.calls = 0

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def chat(self, request: ChatRequest, ctx: Context) -> ChatResponse | ChatStream:
        self._maybe_fail()
        await self._clock.sleep(self.options.latency)
        reply = self._reply(request)
        usage = Usage(input_tokens=_count_tokens(request), output_tokens=_words(reply.text) + 1)
        finish: FinishReason = "tool_calls" if reply.tool_calls else "stop"
        response_id = "chatcmpl-mock-" + new_request_id()[:24]
        created = int(self._clock.wall())
        if not request.stream:
            return ChatResponse(
                id=response_id,
                model=self.model,
                created=created,
                message=reply,
                finish_reason=finish,
                usage=usage,
                provider=self.name,
            )
        source = self._chunks(reply, finish, usage)
        return await ChatStream.open_chunks(
            source, id=response_id, model=self.model, created=created, provider=self.name
        )

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        return None  # no counting endpoint: the caller estimates

    async def embed(self, request: EmbeddingRequest, ctx: Context) -> EmbeddingResponse:
        self._maybe_fail()
        await self._clock.sleep(self.options.latency)
        size = request.dimensions or self.options.dimensions
        if len(request.input) * size > MAX_EMBEDDING_FLOATS:
            raise InvalidRequest(
                f"the mock provider returns at most {MAX_EMBEDDING_FLOATS} floats per request;"
                f" {len(request.input)} inputs x {size} dimensions asks for more",
                param="dimensions" if request.dimensions else "input",
            )
        return EmbeddingResponse(
            model=self.model,
            vectors=[_unit_vector(text, size) for text in request.input],
            usage=Usage(input_tokens=sum(_words(t) for t in request.input)),
            provider=self.name,
        )

    def _maybe_fail(self) -> None:
        self.calls += 1
        failing = self.calls <= self.options.fail_times or (
            self.options.fail_rate > 0 and self._rand.random() < self.options.fail_rate
        )
        if failing:
            status = self.options.fail_status
            raise error_for_status(status)(
                f"mock injected failure (status {status})", status=status, provider=self.name
            )

    def _reply(self, request: ChatRequest) -> Message:
        forced = request.tool_choice
        if request.tools and forced is not None and forced.mode in ("required", "tool"):
            tool = next((t for t in request.tools if t.name == forced.name), request.tools[0])
            arguments = _json(tool.parameters, param=f"tools[{request.tools.index(tool)}].parameters")
            call = ToolCallPart(id="call_mock_0", name=tool.name, arguments=arguments)
            return Message(role="assistant", content=(call,))
        text = self.options.text
        if text is None:
            last_user = next((m for m in reversed(request.messages) if m.role == "user"), None)
            text = f"You said: {last_user.text}" if last_user else "Hello from the mock provider."
        if request.response_format is not None:
            text = _structured(text, request.response_format)
        parts: tuple[ContentPart, ...] = (TextPart(text=text),)
        return Message(role="assistant", content=parts)

    async def _chunks(
        self, reply: Message, finish: FinishReason, usage: Usage
    ) -> AsyncGenerator[ChatChunk, None]:
        pieces = _split(reply.text, self.options.chunks)
        for i, call in enumerate(reply.tool_calls):
            yield ChatChunk(
                tool_calls=(ToolCallDelta(index=i, id=call.id, name=call.name, arguments=call.arguments),)
            )
        for n, piece in enumerate(pieces):
            if self.options.fail_after_chunks is not None and n >= self.options.fail_after_chunks:
                raise ConnectionFailed("mock stream dropped", provider=self.name)
            if n:
                await self._clock.sleep(self.options.chunk_delay)
            yield ChatChunk(text=piece)
        yield ChatChunk(finish_reason=finish)
        yield ChatChunk(usage=usage)


def _structured(text: str, fmt: ResponseFormat) -> str:
    """The reply as the format asks: JSON object mode keeps a scripted object, else wraps the text."""
    if fmt.type == "json_schema":
        return _json(fmt.json_schema or {"type": "object"}, param="response_format.json_schema")
    if fmt.type == "json_object":
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        return text if isinstance(value, dict) else json.dumps({"text": text})
    return text


def _json(schema: object, *, param: str) -> str:
    """JSON text of the minimal instance of ``schema``; a schema nothing satisfies is the caller's 400."""
    try:
        return json.dumps(minimal_instance(schema))
    except ValueError as err:
        raise InvalidRequest(f"the mock provider cannot answer this schema: {err}", param=param) from err


def _split(text: str, count: int) -> list[str]:
    """Word-sized pieces by default; ``count`` near-equal pieces when set. Joining gives ``text``."""
    if not text:
        return []
    if count <= 0:
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]
    size = math.ceil(len(text) / count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _words(text: str) -> int:
    return len(text.split())


def _count_tokens(request: ChatRequest) -> int:
    return sum(_words(m.text) + 3 for m in request.messages)


def _unit_vector(text: str, size: int) -> list[float]:
    """The text's SHA-256 bytes, centred and repeated to ``size``, scaled to length 1.

    Built from one 32-value period (norm in closed form, the list by repetition), so the cost is
    C-speed copying rather than ``size`` Python-level steps.
    """
    digest = hashlib.sha256(text.encode()).digest()
    period = [(b - 127.5) / 127.5 for b in digest]
    whole, part = divmod(size, len(period))
    squares = [x * x for x in period]
    norm = math.sqrt(whole * sum(squares) + sum(squares[:part])) or 1.0
    unit = [x / norm for x in period]
    return (unit * (whole + 1))[:size]


def create(
    target: TargetConfig, timeout: TimeoutConfig, clock: Clock, *, limits: RateLimits | None = None
) -> MockProvider:
    """The mock sends no keys, so ``limits`` (the store of keys' own limits) has nothing to count."""
    options = msgspec.convert(target.options, MockOptions, strict=False)  # `${VAR}` fills numbers
    return MockProvider(target.model or "mock", options, clock)
