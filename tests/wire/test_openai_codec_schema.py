"""What the OpenAI codec emits validates against OpenAI's published OpenAPI schema
(loaded by :mod:`tests.openapi_spec`)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from llmrelay.errors import AuthenticationError, ContextLengthExceeded, RateLimited
from llmrelay.types import (
    ChatChunk,
    ChatResponse,
    EmbeddingResponse,
    Message,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    text_message,
)
from llmrelay.wire.openai_embeddings import encode_embedding_response
from llmrelay.wire.openai_errors import encode_error
from llmrelay.wire.openai_inbound import encode_chat_response
from llmrelay.wire.openai_stream import ChatStreamEncoder
from tests.openapi_spec import Validate, openai_spec_validator


@pytest.fixture(scope="module")
def validate() -> Validate:
    return openai_spec_validator()


def test_schema_rejects_what_it_should(validate: Validate) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate("CreateChatCompletionResponse", {"id": "x", "object": "chat.completion"})


def test_chat_response_text(validate: Validate) -> None:
    response = ChatResponse(
        id="chatcmpl-1",
        model="gpt-4o",
        created=1700000000,
        message=text_message("assistant", "Hi"),
        usage=Usage(input_tokens=3, output_tokens=1, cached_input_tokens=1, reasoning_tokens=0),
    )
    validate("CreateChatCompletionResponse", encode_chat_response(response))


def test_chat_response_tool_calls(validate: Validate) -> None:
    response = ChatResponse(
        id="chatcmpl-2",
        model="gpt-4o",
        created=1700000000,
        message=Message(
            role="assistant",
            content=(TextPart(text="Let me check."), ToolCallPart(id="call_1", name="f", arguments="{}")),
        ),
        finish_reason="tool_calls",
    )
    validate("CreateChatCompletionResponse", encode_chat_response(response, model="fast"))


def test_stream_chunks(validate: Validate) -> None:
    encoder = ChatStreamEncoder(id="chatcmpl-3", model="fast", created=1700000000, include_usage=True)
    chunks = [
        ChatChunk(text="Hi"),
        ChatChunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="f"),)),
        ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments='{"a": 1}'),)),
        ChatChunk(finish_reason="tool_calls"),
        ChatChunk(usage=Usage(input_tokens=5, output_tokens=2)),
    ]
    objects = [obj for chunk in chunks for obj in encoder.encode(chunk)]
    assert len(objects) == 5
    for obj in objects:
        validate("CreateChatCompletionStreamResponse", obj)


def test_embeddings(validate: Validate) -> None:
    response = EmbeddingResponse(model="e", vectors=[[0.1, 0.2], [0.3, 0.4]], usage=Usage(input_tokens=4))
    validate("CreateEmbeddingResponse", encode_embedding_response(response))


@pytest.mark.parametrize(
    "err",
    [
        ContextLengthExceeded("too long", param="messages"),
        RateLimited("slow down", retry_after=1.0),
        AuthenticationError("bad key"),
    ],
)
def test_errors(validate: Validate, err: Any) -> None:
    validate("ErrorResponse", encode_error(err))
