"""OpenAI-compatible model routes: ``POST /v1/chat/completions`` and ``POST /v1/embeddings``."""

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
from llmrelay.types import ChatChunk, ChatResponse, EmbeddingResponse
from llmrelay.wire import openai_embeddings, openai_errors, openai_inbound
from llmrelay.wire.openai_stream import ChatStreamEncoder
from llmrelay.wire.sse import encode_data

_DONE = b"data: [DONE]\n\n"


class OpenAIFrames:
    """``data: {chunk}`` lines, ``data: [DONE]`` at the end, ``data: {"error": ...}`` on failure."""

    def __init__(self, stream: ChatStream, request: CanonicalRequest) -> None:
        include_usage = openai_inbound.stream_include_usage(request)  # type: ignore[arg-type]
        self._encoder = ChatStreamEncoder(
            id=stream.id, model=stream.model, created=stream.created, include_usage=include_usage
        )

    def chunk(self, chunk: ChatChunk) -> bytes:
        return b"".join(encode_data(data) for data in self._encoder.encode_json(chunk))

    def end(self) -> bytes:
        return _DONE

    def error(self, err: RelayError) -> bytes:
        return encode_data(msgspec.json.encode(openai_errors.encode_error(err)))


def _encode_chat(result: Result, request: CanonicalRequest) -> dict[str, Any]:
    assert isinstance(result, ChatResponse)
    return openai_inbound.encode_chat_response(result)


def _encode_embeddings(result: Result, request: CanonicalRequest) -> dict[str, Any]:
    assert isinstance(result, EmbeddingResponse)
    fmt = request.extension("openai").get("encoding_format")
    return openai_embeddings.encode_embedding_response(
        result, encoding_format="base64" if fmt == "base64" else "float"
    )


CHAT = Face(
    route="/v1/chat/completions",
    decode=openai_inbound.decode_chat_request,
    encode=_encode_chat,
    frames=OpenAIFrames,
    error_body=openai_errors.encode_error,
)

EMBEDDINGS = Face(
    route="/v1/embeddings",
    decode=openai_embeddings.decode_embedding_request,
    encode=_encode_embeddings,
    frames=OpenAIFrames,
    error_body=openai_errors.encode_error,
)


async def chat_completions(request: Request) -> Response:
    return await handle(request, CHAT)


async def embeddings(request: Request) -> Response:
    return await handle(request, EMBEDDINGS)
