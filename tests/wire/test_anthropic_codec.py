"""Anthropic codec, upstream direction: request encoding, response decoding, error mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmrelay.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RelayError,
    Timeout,
    UpstreamAuthError,
    UpstreamError,
)
from llmrelay.types import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    text_message,
)
from llmrelay.wire.anthropic import (
    ANSWER_TOOL,
    DEFAULT_MAX_TOKENS,
    JSON_OBJECT_INSTRUCTION,
    answer_tool,
    decode_chat_response,
    encode_chat_request,
)
from llmrelay.wire.anthropic_errors import decode_error, encode_error

PAYLOADS = Path(__file__).parent / "payloads" / "anthropic"
NOW = 1_700_000_000.0
WEATHER = Tool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}},
)


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def request(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="alias", messages=messages, **fields)


def encode(req: ChatRequest, **kwargs: Any) -> dict[str, Any]:
    body = encode_chat_request(req, model="claude-haiku-4-5", **kwargs)
    # What goes on the wire must survive JSON encoding.
    return json.loads(msgspec.json.encode(body))


# -- request ---------------------------------------------------------------------------------


def test_minimal_request_uses_target_model_and_default_max_tokens() -> None:
    body = encode(request(text_message("user", "Hi")))
    assert body == {
        "model": "claude-haiku-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_system_messages_are_hoisted_and_joined() -> None:
    body = encode(
        request(
            text_message("system", "Be brief."),
            text_message("user", "Hi"),
            text_message("system", "Use French."),
        )
    )
    assert body["system"] == "Be brief.\n\nUse French."
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_sampling_fields_stop_user_and_stream() -> None:
    body = encode(
        request(
            text_message("user", "Hi"),
            temperature=0.3,
            top_p=0.9,
            max_tokens=77,
            stop=("END", "STOP"),
            user="u-1",
            seed=42,
            stream=True,
        ),
        default_max_tokens=9,
    )
    assert body["temperature"] == 0.3
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 77
    assert body["stop_sequences"] == ["END", "STOP"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["stream"] is True
    assert "seed" not in body


def test_default_max_tokens_is_configurable() -> None:
    assert encode(request(text_message("user", "Hi")), default_max_tokens=9)["max_tokens"] == 9


def test_images_become_base64_and_url_sources() -> None:
    message = Message(
        role="user",
        content=(
            TextPart(text="What is this?"),
            ImagePart(url="data:image/png;base64,iVBORw0KGgo="),
            ImagePart(url="https://example.com/cat.jpg"),
        ),
    )
    assert encode(request(message))["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize("url", ["data:image/png,rawbytes", "ftp://example.com/a.png"])
def test_unsupported_image_urls_name_the_part(url: str) -> None:
    message = Message(role="user", content=(TextPart(text="x"), ImagePart(url=url)))
    with pytest.raises(InvalidRequest) as info:
        encode(request(message))
    assert info.value.param == "messages[0].content[1]"


def test_tool_calls_and_consecutive_results_become_tool_use_and_one_user_message() -> None:
    body = encode(
        request(
            text_message("user", "Weather and time in Paris?"),
            Message(
                role="assistant",
                content=(
                    TextPart(text="Checking."),
                    ToolCallPart(id="toolu_1", name="get_weather", arguments='{"location":"Paris"}'),
                    ToolCallPart(id="toolu_2", name="get_time", arguments=""),
                ),
            ),
            Message(role="tool", content=(ToolResultPart(tool_call_id="toolu_1", content="18C"),)),
            Message(
                role="tool",
                content=(ToolResultPart(tool_call_id="toolu_2", content="down", is_error=True),),
            ),
            text_message("user", "Thanks"),
        )
    )
    assert body["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "down", "is_error": True},
            ],
        },
        {"role": "user", "content": "Thanks"},
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_bad_tool_call_arguments_name_the_field(arguments: str) -> None:
    call = ToolCallPart(id="t", name="f", arguments=arguments)
    with pytest.raises(InvalidRequest) as info:
        encode(request(text_message("user", "x"), Message(role="assistant", content=(call,))))
    assert info.value.param == "messages[1].content[0].arguments"


def test_tools_use_input_schema() -> None:
    strict = Tool(name="lookup", parameters={"type": "object"}, strict=True)
    body = encode(request(text_message("user", "x"), tools=(WEATHER, strict)))
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "input_schema": WEATHER.parameters,
        },
        {"name": "lookup", "input_schema": {"type": "object"}, "strict": True},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (ToolChoice(mode="auto"), None, {"type": "auto"}),
        (ToolChoice(mode="required"), None, {"type": "any"}),
        (ToolChoice(mode="tool", name="get_weather"), None, {"type": "tool", "name": "get_weather"}),
        (ToolChoice(mode="none"), None, {"type": "none"}),
        (ToolChoice(mode="required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice(mode="none"), False, {"type": "none"}),
    ],
)
def test_tool_choice_mapping(
    choice: ToolChoice | None, parallel: bool | None, expected: dict[str, Any]
) -> None:
    req = request(
        text_message("user", "x"), tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=parallel
    )
    assert encode(req)["tool_choice"] == expected


def test_tool_choice_tool_without_name_is_rejected() -> None:
    req = request(text_message("user", "x"), tools=(WEATHER,), tool_choice=ToolChoice(mode="tool"))
    with pytest.raises(InvalidRequest) as info:
        encode(req)
    assert info.value.param == "tool_choice.name"


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_json_schema_becomes_a_forced_answer_tool() -> None:
    fmt = ResponseFormat(type="json_schema", name="city_facts", json_schema=SCHEMA)
    req = request(text_message("user", "Paris?"), response_format=fmt)
    body = encode(req)
    assert answer_tool(req) == "city_facts"
    assert body["tools"] == [
        {
            "name": "city_facts",
            "description": "Give the final answer as input to this tool.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "city_facts"}
    strict = request(
        text_message("user", "x"), response_format=ResponseFormat(type="json_schema", strict=True)
    )
    assert encode(strict)["tools"][0]["strict"] is True
    unnamed = request(text_message("user", "x"), response_format=ResponseFormat(type="json_schema"))
    assert answer_tool(unnamed) == ANSWER_TOOL
    assert encode(unnamed)["tools"][0]["input_schema"] == {"type": "object"}


def test_json_schema_with_caller_tools_keeps_them_callable() -> None:
    fmt = ResponseFormat(type="json_schema", json_schema=SCHEMA)
    body = encode(request(text_message("user", "x"), tools=(WEATHER,), response_format=fmt))
    assert [t["name"] for t in body["tools"]] == ["get_weather", ANSWER_TOOL]
    assert body["tool_choice"] == {"type": "any"}


def test_json_schema_native_mode_uses_output_config() -> None:
    fmt = ResponseFormat(type="json_schema", json_schema=SCHEMA)
    req = request(text_message("user", "x"), response_format=fmt)
    body = encode(req, json_schema_mode="native")
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in body
    assert answer_tool(req, "native") is None


def test_json_object_adds_a_system_instruction() -> None:
    req = request(
        text_message("system", "Be terse."),
        text_message("user", "x"),
        response_format=ResponseFormat(type="json_object"),
    )
    assert encode(req)["system"] == "Be terse.\n\n" + JSON_OBJECT_INSTRUCTION
    assert answer_tool(req) is None


def test_anthropic_extensions_are_merged_last() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    req = request(
        text_message("user", "x"),
        max_tokens=100,
        extensions={"anthropic": {"top_k": 5, "thinking": thinking, "max_tokens": 5000}},
    )
    body = encode(req)
    assert body["top_k"] == 5
    assert body["thinking"] == thinking
    assert body["max_tokens"] == 5000
    other = request(text_message("user", "x"), extensions={"openai": {"logprobs": True}})
    assert "logprobs" not in encode(other)


# -- response --------------------------------------------------------------------------------


def test_decode_text_message() -> None:
    response = decode_chat_response(payload("message_text.json"), created=123)
    assert response.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.model == "claude-haiku-4-5-20251001"
    assert response.created == 123
    assert response.text == "Hello! How can I help you today?"
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 12
    assert response.usage.output_tokens == 11
    assert response.provider == "anthropic"


def test_decode_tool_use_and_cache_usage() -> None:
    response = decode_chat_response(payload("message_tool_use.json"), created=0)
    assert response.text == "I'll check the current weather in San Francisco for you."
    assert response.tool_calls == (
        ToolCallPart(
            id="toolu_01A09q90qw90lq917835lq9",
            name="get_weather",
            arguments='{"location":"San Francisco, CA","unit":"celsius"}',
        ),
    )
    assert response.finish_reason == "tool_calls"
    # input 120 + cache writes 30 + cache reads 1800; reads and writes are subsets, priced apart.
    assert response.usage.input_tokens == 1950
    assert response.usage.cached_input_tokens == 1800
    assert response.usage.cache_write_input_tokens == 30
    assert response.usage.output_tokens == 61


def test_decode_answer_tool_as_json_text() -> None:
    response = decode_chat_response(payload("message_json_tool.json"), created=0, json_tool="city_facts")
    assert response.tool_calls == ()
    assert json.loads(response.text) == {"city": "Paris", "population": 2102650}
    assert response.finish_reason == "stop"
    as_tool = decode_chat_response(payload("message_json_tool.json"), created=0)
    assert as_tool.tool_calls[0].name == "city_facts"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, None),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish: str | None) -> None:
    body = json.loads(payload("message_text.json"))
    body["stop_reason"] = stop_reason
    response = decode_chat_response(json.dumps(body).encode(), created=0)
    assert response.finish_reason == finish


def test_invalid_message_body_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        decode_chat_response(b'{"id": "msg_1"}', created=0)


# -- errors ----------------------------------------------------------------------------------

ERROR_CASES = [
    (400, "error_invalid_request.json", InvalidRequest, 400),
    (400, "error_prompt_too_long.json", ContextLengthExceeded, 400),
    (401, "error_authentication.json", UpstreamAuthError, 502),
    (403, "error_permission.json", UpstreamAuthError, 502),
    (404, "error_not_found.json", NotFound, 404),
    (413, "error_request_too_large.json", PayloadTooLarge, 413),
    (429, "error_rate_limit.json", RateLimited, 429),
    (500, "error_api.json", UpstreamError, 500),
    (529, "error_overloaded.json", Overloaded, 529),
    (504, "error_timeout.json", Timeout, 504),
]


@pytest.mark.parametrize(("status", "name", "kind", "canonical_status"), ERROR_CASES)
def test_error_statuses_map_to_the_tree(
    status: int, name: str, kind: type[RelayError], canonical_status: int
) -> None:
    err = decode_error(status, {}, payload(name), now=NOW)
    assert type(err) is kind
    assert err.status == canonical_status
    assert err.provider == "anthropic"
    assert err.retry_after is None


def test_upstream_messages_pass_through_but_credential_errors_are_fixed() -> None:
    err = decode_error(404, {}, payload("error_not_found.json"), now=NOW)
    assert err.message == "model: claude-nonexistent-1"
    auth = decode_error(401, {}, payload("error_authentication.json"), now=NOW)
    assert "x-api-key" not in auth.message
    assert auth.message.startswith(
        "anthropic rejected the configured credentials (authentication_error, 401)"
    )


def test_rate_limit_retry_after_and_should_retry() -> None:
    headers = {"retry-after": "17", "x-should-retry": "true"}
    err = decode_error(429, headers, payload("error_rate_limit.json"), now=NOW)
    assert isinstance(err, RateLimited)
    assert err.retry_after == 17.0
    assert err.should_retry is True
    overloaded = decode_error(529, {"x-should-retry": "false"}, payload("error_overloaded.json"), now=NOW)
    assert overloaded.should_retry is False


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (413, PayloadTooLarge),
        (502, UpstreamError),
        (529, Overloaded),
        (504, UpstreamError),
        (418, InvalidRequest),
    ],
)
def test_non_json_bodies_fall_back_to_the_status(status: int, kind: type[RelayError]) -> None:
    err = decode_error(status, {}, b"<html><body>Request Entity Too Large</body></html>", now=NOW)
    assert type(err) is kind
    assert err.message == f"anthropic: upstream returned {status} (no content type, 50 B)"


@pytest.mark.parametrize(("status", "name", "kind", "canonical_status"), ERROR_CASES)
def test_encode_error_round_trips_the_type(
    status: int, name: str, kind: type[RelayError], canonical_status: int
) -> None:
    err = decode_error(status, {}, payload(name), now=NOW)
    expected = json.loads(payload(name))["error"]["type"]
    if kind is UpstreamAuthError:
        expected = "api_error"  # the gateway's key was refused: a 502 for the client, not their 401
    body = encode_error(err, request_id="req_1")
    assert body["type"] == "error"
    assert body["error"]["type"] == expected
    assert body["error"]["message"] == err.message
    assert body["request_id"] == "req_1"
