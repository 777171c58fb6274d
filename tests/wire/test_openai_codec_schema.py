"""What the OpenAI codec emits validates against OpenAI's published OpenAPI schema.

The spec (3 MB) is loaded once for this module. It mixes OpenAPI 3.0's ``nullable: true`` into a
3.1 document; JSON Schema ignores that keyword, which would reject the ``null`` values OpenAI itself
sends (``finish_reason: null`` in stream chunks), so the fixture rewrites it to ``anyOf [..., null]``.

The spec is not in the repo: ``LLMRELAY_OPENAI_SPEC`` names it (default below). Missing, these
tests are skipped locally and fail under ``CI=true``, like a missing service.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

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
from tests.services import require_file

SPEC = Path(os.environ.get("LLMRELAY_OPENAI_SPEC") or "/work/shared/spec/openai-openapi.yaml")
URI = "urn:openai-openapi"

Validate = Callable[[str, Any], None]


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def validate() -> Validate:
    require_file(
        SPEC,
        "OpenAI's OpenAPI spec",
        hint="set LLMRELAY_OPENAI_SPEC to openapi.yaml from github.com/openai/openai-openapi",
    )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = _nullable(yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader))
    registry: Registry[Any] = Registry().with_resource(
        URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )

    def check(component: str, instance: Any) -> None:
        schema = {"$ref": f"{URI}#/components/schemas/{component}"}
        jsonschema.Draft202012Validator(schema, registry=registry).validate(instance)

    return check


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
