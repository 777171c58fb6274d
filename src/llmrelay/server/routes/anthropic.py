"""Anthropic-compatible ``POST /v1/messages``: any target behind it, translated once per attempt."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.errors import RelayError
from llmrelay.server.handler import Face, handle
from llmrelay.service import Request as CanonicalRequest
from llmrelay.service import Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatResponse
from llmrelay.wire import anthropic_errors, anthropic_inbound
from llmrelay.wire.anthropic_stream import AnthropicStreamEncoder
from llmrelay.wire.sse import encode_event


class AnthropicFrames:
    """Named events in Anthropic's order; ``event: error`` on failure (then no ``message_stop``)."""

    def __init__(self, stream: ChatStream, request: CanonicalRequest) -> None:
        self._encoder = AnthropicStreamEncoder(id=stream.id, model=stream.model)

    def chunk(self, chunk: ChatChunk) -> bytes:
        return _events(self._encoder.feed(chunk))

    def end(self) -> bytes:
        return _events(self._encoder.finish())

    def error(self, err: RelayError) -> bytes:
        return encode_event("error", msgspec.json.encode(anthropic_errors.encode_error(err)))


def _events(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(encode_event(name, msgspec.json.encode(data)) for name, data in events)


def _encode(result: Result, request: CanonicalRequest) -> dict[str, Any]:
    assert isinstance(result, ChatResponse)
    return anthropic_inbound.encode_messages_response(result)


MESSAGES = Face(
    route="/v1/messages",
    decode=anthropic_inbound.decode_messages_request,
    encode=_encode,
    frames=AnthropicFrames,
    error_body=anthropic_errors.encode_error,
    anthropic=True,
)


async def messages(request: Request) -> Response:
    return await handle(request, MESSAGES)
