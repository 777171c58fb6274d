"""The OpenAI codec, server side: inbound requests, outbound answers and streams, embeddings."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmrelay.errors import ContextLengthExceeded, InvalidRequest, RateLimited, UpstreamError
from llmrelay.types import (
    ChatChunk,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
    text_message,
)
from llmrelay.wire.openai import encode_chat_request
from llmrelay.wire.openai_embeddings import (
    decode_embedding_request,
    decode_embedding_response,
    encode_embedding_request,
    encode_embedding_response,
)
from llmrelay.wire.openai_errors import encode_error
from llmrelay.wire.openai_inbound import (
    decode_chat_request,
    decode_messages,
    decode_response_format,
    decode_tool_choice,
    decode_tools,
    encode_chat_response,
    stream_include_usage,
)
from llmrelay.wire.openai_stream import ChatStreamDecoder, ChatStreamEncoder

PAYLOADS = Path(__file__).parent / "payloads" / "openai"


def body(**fields: Any) -> bytes:
    return msgspec.json.encode({"model": "fast", "messages": [{"role": "user", "content": "Hi"}], **fields})


# --- inbound chat requests ------------------------------------------------------------------------


def test_decode_full_request() -> None:
    req = decode_chat_request(
        msgspec.json.encode(
            {
                "model": "fast",
                "messages": [
                    {"role": "developer", "content": "Be brief."},
                    {"role": "system", "content": [{"type": "text", "text": "Really."}]},
                    {
                        "role": "user",
                        "name": "ann",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://x.test/a.png", "detail": "high"},
                            },
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "look", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "42"}]},
                ],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "look",
                            "description": "Look",
                            "parameters": {"type": "object"},
                            "strict": True,
                        },
                    }
                ],
                "tool_choice": "required",
                "parallel_tool_calls": False,
                "response_format": {"type": "json_object"},
                "temperature": 0.5,
                "top_p": 1,
                "max_tokens": 10,
                "max_completion_tokens": 20,
                "stop": ["A", "B"],
                "seed": 3,
                "user": "u",
                "stream": True,
                "stream_options": {"include_usage": True},
                "n": 1,
                "logprobs": False,
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
                "logit_bias": {"50256": -100},
                "metadata": {"team": "search"},
                "store": False,
                "reasoning_effort": "low",
                "service_tier": "flex",
            }
        )
    )
    assert req.model == "fast"
    assert req.messages == (
        text_message("system", "Be brief."),
        text_message("system", "Really."),
        Message(
            role="user",
            name="ann",
            content=(TextPart(text="What is this?"), ImagePart(url="https://x.test/a.png", detail="high")),
        ),
        Message(role="assistant", content=(ToolCallPart(id="call_1", name="look", arguments="{}"),)),
        Message(role="tool", content=(ToolResultPart(tool_call_id="call_1", content="42", name="look"),)),
    )
    assert req.tools == (Tool(name="look", description="Look", parameters={"type": "object"}, strict=True),)
    assert req.tool_choice == ToolChoice(mode="required")
    assert req.parallel_tool_calls is False
    assert req.response_format == ResponseFormat(type="json_object")
    assert (req.temperature, req.top_p, req.max_tokens, req.stop, req.seed, req.user, req.stream) == (
        0.5,
        1.0,
        20,
        ("A", "B"),
        3,
        "u",
        True,
    )
    assert req.extension("openai") == {
        "stream_options": {"include_usage": True},
        "n": 1,
        "logprobs": False,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
        "metadata": {"team": "search"},
        "store": False,
        "service_tier": "flex",
    }
    assert req.reasoning == Reasoning(effort="low")  # canonical: it maps onto other providers
    assert stream_include_usage(req)


def test_unknown_fields_reach_an_openai_upstream_untouched() -> None:
    req = decode_chat_request(body(logit_bias={"1": 5}, reasoning_effort="high", stop="END"))
    upstream = encode_chat_request(req, model="o4-mini")
    assert upstream["logit_bias"] == {"1": 5}
    assert upstream["reasoning_effort"] == "high"
    assert upstream["stop"] == ["END"]
    assert not stream_include_usage(req)


def test_minimal_request_defaults() -> None:
    req = decode_chat_request(body())
    assert req.messages == (text_message("user", "Hi"),)
    assert (req.stream, req.tools, req.tool_choice, req.extensions) == (False, (), None, {})


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "maybe"},
            "tool_choice",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
            "tools[0].function",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "yaml"},
            },
            "response_format.type",
        ),
    ],
)
def test_bad_requests_name_the_field(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_chat_request(msgspec.json.encode(payload))
    assert info.value.param == param
    assert param in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="JSON"):
        decode_chat_request(raw)


def test_facade_helpers_accept_openai_dicts() -> None:
    assert decode_messages([{"role": "user", "content": "Hi"}]) == (text_message("user", "Hi"),)
    assert decode_tools([{"type": "function", "function": {"name": "f"}}]) == (Tool(name="f"),)
    assert decode_tool_choice({"type": "function", "function": {"name": "f"}}) == ToolChoice(
        mode="tool", name="f"
    )
    assert decode_tool_choice("none") == ToolChoice(mode="none")
    assert decode_response_format(
        {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}}
    ) == ResponseFormat(type="json_schema", name="n", json_schema={"type": "object"})


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (
            lambda: decode_messages([{"role": "user", "content": "a"}, {"role": "user", "content": None}]),
            "messages[1].content",
        ),
        (lambda: decode_messages("hello"), "messages"),
        (lambda: decode_tools([{"type": "function", "function": {"name": 1}}]), "tools[0].function.name"),
        (lambda: decode_tool_choice("sometimes"), "tool_choice"),
        (lambda: decode_response_format({"type": "json_schema"}), "response_format.json_schema"),
    ],
)
def test_facade_helpers_name_the_field(call: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        call()
    assert info.value.param == param


# --- outbound chat answers ------------------------------------------------------------------------


def test_encode_response_with_tool_calls_and_usage() -> None:
    response = ChatResponse(
        id="chatcmpl-1",
        model="gpt-4o",
        created=1700000000,
        message=Message(
            role="assistant", content=(ToolCallPart(id="call_1", name="f", arguments='{"a":1}'),)
        ),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=10, output_tokens=5, cached_input_tokens=4, reasoning_tokens=2),
    )
    out = encode_chat_response(response, model="fast")
    assert out["model"] == "fast"
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
        ],
    }
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def test_stream_encoder_round_trips_through_the_decoder() -> None:
    encoder = ChatStreamEncoder(id="chatcmpl-9", model="fast", created=1700000000, include_usage=True)
    chunks = [
        ChatChunk(text="Hel"),
        ChatChunk(text="lo"),
        ChatChunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="f"),)),
        ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments="{}"),)),
        ChatChunk(finish_reason="tool_calls"),
        ChatChunk(usage=Usage(input_tokens=3, output_tokens=2)),
    ]
    objects = [obj for chunk in chunks for obj in encoder.encode(chunk)]
    assert {o["id"] for o in objects} == {"chatcmpl-9"}
    assert objects[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert all("role" not in o["choices"][0]["delta"] for o in objects[1:] if o["choices"])
    assert objects[-1]["choices"] == []
    decoder = ChatStreamDecoder()
    decoded = [decoder.feed(payload) for payload in [*map(json.dumps, objects), "[DONE]"]]
    assert [c for c in decoded if c is not None] == chunks
    assert decoder.done


def test_stream_encoder_leaves_out_usage_unless_asked() -> None:
    encoder = ChatStreamEncoder(id="c", model="m", created=1)
    assert encoder.encode(ChatChunk(text="a"))
    assert encoder.encode(ChatChunk(usage=Usage(input_tokens=1))) == []
    both = encoder.encode(ChatChunk(text="b", finish_reason="stop", usage=Usage(input_tokens=1)))
    assert len(both) == 1
    assert both[0]["choices"][0]["finish_reason"] == "stop"


def test_stream_encoder_opens_with_role_even_without_text() -> None:
    encoder = ChatStreamEncoder(id="c", model="m", created=1)
    (first,) = encoder.encode(ChatChunk(finish_reason="stop"))
    assert first["choices"][0]["delta"] == {"role": "assistant"}


@pytest.mark.parametrize(
    ("err", "type_", "code"),
    [
        (InvalidRequest("bad", param="messages"), "invalid_request_error", "invalid_request"),
        (ContextLengthExceeded("long"), "invalid_request_error", "context_length_exceeded"),
        (RateLimited("slow"), "rate_limit_error", "rate_limit_exceeded"),
        (UpstreamError("boom"), "server_error", "upstream_error"),
    ],
)
def test_encode_error_envelope(err: Any, type_: str, code: str) -> None:
    out = encode_error(err)
    assert out == {"error": {"message": err.message, "type": type_, "param": err.param, "code": code}}


# --- embeddings -----------------------------------------------------------------------------------


def test_embedding_request_both_directions() -> None:
    req = decode_embedding_request(
        msgspec.json.encode(
            {
                "model": "embed",
                "input": ["a", "b"],
                "dimensions": 3,
                "user": "u",
                "encoding_format": "base64",
                "x": 1,
            }
        )
    )
    assert req == EmbeddingRequest(
        model="embed",
        input=("a", "b"),
        dimensions=3,
        user="u",
        extensions={"openai": {"x": 1, "encoding_format": "base64"}},
    )
    assert decode_embedding_request(b'{"model": "e", "input": "one"}').input == ("one",)
    upstream = encode_embedding_request(
        EmbeddingRequest(model="alias", input=("a",), dimensions=3), model="text-embedding-3-small"
    )
    assert upstream == {"model": "text-embedding-3-small", "input": ["a"], "dimensions": 3}
    assert encode_embedding_request(req, model="m", encoding_format="base64")["encoding_format"] == "base64"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "e", "input": [1, 2]}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"input": "x"}, "model"),
    ],
)
def test_embedding_request_errors_name_the_field(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_embedding_request(msgspec.json.encode(payload))
    assert info.value.param is not None
    assert info.value.param.startswith(param)


def test_decode_float_embeddings_in_index_order() -> None:
    response = decode_embedding_response((PAYLOADS / "embeddings_float.json").read_bytes())
    assert response.vectors == [[-0.0069292834, 0.0023064255, -0.009327292], [0.25, -0.5, 0.125]]
    assert response.model == "text-embedding-3-small"
    assert response.usage == Usage(input_tokens=8)


def test_decode_base64_embeddings() -> None:
    response = decode_embedding_response((PAYLOADS / "embeddings_base64.json").read_bytes())
    assert response.vectors == [[0.5, -1.5, 3.0, 0.0], [1.0, 2.0, -0.25, 8.0]]


def test_encode_base64_embeddings_little_endian_float32() -> None:
    response = EmbeddingResponse(model="e", vectors=[[0.5, -2.0]], usage=Usage(input_tokens=2))
    out = encode_embedding_response(response, encoding_format="base64")
    assert struct.unpack("<2f", base64.b64decode(out["data"][0]["embedding"])) == (0.5, -2.0)
    assert out["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert encode_embedding_response(response, model="alias")["data"][0]["embedding"] == [0.5, -2.0]


@pytest.mark.parametrize(
    "raw", [b"{}", b'{"data": [{"embedding": "!!notbase64"}]}', b'{"data": [{"embedding": "AAA="}]}']
)
def test_malformed_embeddings_are_upstream_errors(raw: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed embedding"):
        decode_embedding_response(raw)
