"""The OpenAI codec, upstream side, on recorded payloads: request bodies, answers, streams, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmrelay.classify import classify
from llmrelay.errors import (
    ContentFiltered,
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
    ChatChunk,
    ChatRequest,
    ImagePart,
    Message,
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
from llmrelay.wire.openai import decode_chat_response, encode_chat_request
from llmrelay.wire.openai_errors import decode_error, decode_stream_error
from llmrelay.wire.openai_stream import ChatStreamDecoder, ChatStreamEncoder

PAYLOADS = Path(__file__).parent / "payloads" / "openai"
NOW = 1_700_000_000.0


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def request(**fields: Any) -> ChatRequest:
    return ChatRequest(model="alias", messages=(text_message("user", "Hi"),), **fields)


# --- request encoding -----------------------------------------------------------------------------


def test_encode_full_conversation() -> None:
    req = ChatRequest(
        model="alias",
        messages=(
            text_message("system", "Be brief."),
            Message(
                role="user",
                content=(
                    TextPart(text="What is this?"),
                    ImagePart(url="data:image/png;base64,iVBORw0KGgo=", detail="low"),
                ),
                name="ann",
            ),
            Message(
                role="assistant",
                content=(ToolCallPart(id="call_1", name="lookup", arguments='{"q":"x"}'),),
            ),
            Message(
                role="tool",
                content=(
                    ToolResultPart(tool_call_id="call_1", content="42"),
                    ToolResultPart(tool_call_id="call_2", content="43"),
                ),
            ),
        ),
    )
    body = encode_chat_request(req, model="gpt-4o")
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"x"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "tool", "tool_call_id": "call_2", "content": "43"},
    ]
    assert "stream" not in body


def test_encode_tools_choice_format_and_sampling() -> None:
    req = request(
        tools=(Tool(name="get_weather", description="Weather", parameters={"type": "object"}, strict=True),),
        tool_choice=ToolChoice(mode="tool", name="get_weather"),
        parallel_tool_calls=False,
        response_format=ResponseFormat(
            type="json_schema", name="answer", json_schema={"type": "object"}, strict=True
        ),
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=("END",),
        seed=7,
        user="u-1",
    )
    body = encode_chat_request(req, model="gpt-4o", max_tokens_field="max_completion_tokens")
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object"},
                "description": "Weather",
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert (body["temperature"], body["top_p"], body["stop"], body["seed"], body["user"]) == (
        0.2,
        0.9,
        ["END"],
        7,
        "u-1",
    )


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice(mode="auto"), "auto"),
        (ToolChoice(mode="none"), "none"),
        (ToolChoice(mode="required"), "required"),
        (ToolChoice(mode="tool"), "required"),
    ],
)
def test_encode_tool_choice_modes(choice: ToolChoice, wire: str) -> None:
    assert encode_chat_request(request(tool_choice=choice), model="m")["tool_choice"] == wire


def test_encode_json_object_and_max_tokens_default() -> None:
    body = encode_chat_request(
        request(response_format=ResponseFormat(type="json_object"), max_tokens=9), model="m"
    )
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] == 9


def test_parallel_tool_calls_needs_tools() -> None:
    assert "parallel_tool_calls" not in encode_chat_request(request(parallel_tool_calls=True), model="m")


def test_stream_asks_for_usage_unless_disabled() -> None:
    body = encode_chat_request(request(stream=True), model="m")
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in encode_chat_request(request(stream=True), model="m", stream_usage=False)


def test_extension_merged_but_cannot_override_reserved_keys() -> None:
    ext = {
        "openai": {
            "n": 2,
            "logprobs": True,
            "reasoning_effort": "low",
            "model": "evil",
            "stream_options": {"include_usage": False},
        },
        "anthropic": {"top_k": 5},
    }
    body = encode_chat_request(request(stream=True, extensions=ext), model="gpt-4o")
    assert (body["n"], body["logprobs"], body["reasoning_effort"]) == (2, True, "low")
    assert body["model"] == "gpt-4o"
    assert body["stream_options"] == {"include_usage": True}
    assert "top_k" not in body


# --- unary responses ------------------------------------------------------------------------------


def test_decode_text_response_with_cached_tokens() -> None:
    response = decode_chat_response(raw("chat_text.json"))
    assert response.id == "chatcmpl-CH2kWm1qv8mXr3bY5cZ9dE0fG7hIj"
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.created == 1758011234
    assert response.text == "Hello! How can I help you today?"
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=2006, output_tokens=10, cached_input_tokens=1920)
    assert response.provider == "openai"


def test_decode_reasoning_tokens_and_length() -> None:
    response = decode_chat_response(raw("chat_reasoning_length.json"))
    assert response.finish_reason == "length"
    assert response.usage.reasoning_tokens == 256
    assert response.message.content == ()


def test_decode_tool_calls() -> None:
    response = decode_chat_response(raw("chat_tool_calls.json"))
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.tool_calls == (
        ToolCallPart(
            id="call_Xk3n9TqLz8WmYp2Rv7Bs1Hd",
            name="get_weather",
            arguments='{"city":"Paris","unit":"celsius"}',
        ),
        ToolCallPart(
            id="call_Qw4e5R6t7Y8u9I0oP1aS2dF",
            name="get_weather",
            arguments='{"city":"Tokyo","unit":"celsius"}',
        ),
    )


def test_decode_legacy_function_call() -> None:
    response = decode_chat_response(raw("chat_function_call_legacy.json"))
    assert response.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("get_weather", {"city": "Boston"})
    ]


def test_decode_refusal_becomes_text() -> None:
    response = decode_chat_response(raw("chat_refusal.json"))
    assert response.text == "I'm sorry, I can't help with that request."


def test_decode_vllm_response_without_details() -> None:
    response = decode_chat_response(raw("chat_vllm.json"), provider="openai")
    assert response.text == "Hi there!"
    assert response.tool_calls == ()
    assert response.usage == Usage(input_tokens=31, output_tokens=4)


def test_decode_fills_missing_identity() -> None:
    parts = [{"type": "thinking", "thinking": []}, {"type": "text", "text": "ok"}]
    body = msgspec.json.encode({"choices": [{"message": {"content": parts}, "finish_reason": "eos"}]})
    response = decode_chat_response(body, model="fallback-model", created=123)
    assert (response.model, response.created, response.text) == ("fallback-model", 123, "ok")
    assert response.finish_reason == "stop"


@pytest.mark.parametrize(
    "body", [b"<html>bad gateway</html>", b'{"choices": []}', b'{"choices": "nope"}', b"[]"]
)
def test_malformed_response_is_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="openai"):
        decode_chat_response(body)


# --- streams --------------------------------------------------------------------------------------


def feed_all(events: list[Any]) -> tuple[ChatStreamDecoder, list[ChatChunk]]:
    decoder = ChatStreamDecoder()
    chunks = []
    for event in events:
        chunk = decoder.feed(event if isinstance(event, str) else json.dumps(event))
        if chunk is not None:
            chunks.append(chunk)
    return decoder, chunks


def test_stream_text_deltas_finish_and_usage() -> None:
    decoder, chunks = feed_all(load("stream_text.json"))
    assert decoder.done
    assert (decoder.id, decoder.model, decoder.created) == (
        "chatcmpl-CH2oS4gV5tB6mC7nD8oE9pF0qG1",
        "gpt-4o-mini-2024-07-18",
        1758011600,
    )
    assert "".join(c.text for c in chunks) == "Hello! How can I help?"
    assert chunks[-2] == ChatChunk(finish_reason="stop")
    assert chunks[-1] == ChatChunk(usage=Usage(input_tokens=12, output_tokens=8))
    assert all(c.text for c in chunks[:-2])  # the role-only opening chunk yields nothing


def test_stream_tool_call_fragments_keep_their_index() -> None:
    _, chunks = feed_all(load("stream_tool_calls.json"))
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0] == ToolCallDelta(index=0, id="call_Xk3n9TqLz8WmYp2Rv7Bs1Hd", name="get_weather")
    by_index: dict[int, str] = {}
    for d in deltas:
        by_index[d.index] = by_index.get(d.index, "") + d.arguments
    assert {i: json.loads(a) for i, a in by_index.items()} == {0: {"city": "Paris"}, 1: {"tz": "CET"}}
    assert [d.name for d in deltas if d.name] == ["get_weather", "get_time"]
    assert chunks[-2].finish_reason == "tool_calls"
    assert chunks[-1].usage == Usage(input_tokens=80, output_tokens=40)


def test_stream_without_done_is_not_done() -> None:
    decoder, chunks = feed_all(load("stream_text.json")[:-1])
    assert chunks
    assert not decoder.done


def test_stream_ignores_other_choices_and_data_after_done() -> None:
    decoder = ChatStreamDecoder()
    two = {"choices": [{"index": 1, "delta": {"content": "B"}}, {"index": 0, "delta": {"content": "A"}}]}
    assert decoder.feed(json.dumps(two)) == ChatChunk(text="A")
    assert decoder.feed("[DONE]") is None
    assert decoder.feed(json.dumps(two)) is None


def test_stream_error_event_raises_canonical_error() -> None:
    events = load("stream_error.json")
    decoder = ChatStreamDecoder()
    assert decoder.feed(json.dumps(events[0])) is None
    assert decoder.feed(json.dumps(events[1])) == ChatChunk(text="Partial")
    with pytest.raises(UpstreamError, match="server had an error") as info:
        decoder.feed(json.dumps(events[2]))
    assert info.value.provider == "openai"


def test_malformed_stream_chunk_is_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="malformed stream chunk"):
        ChatStreamDecoder().feed("{not json")


@pytest.mark.parametrize(
    ("payload", "cls", "status"),
    [
        (
            {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"},
            RateLimited,
            429,
        ),
        (
            {"message": "x", "type": "invalid_request_error", "code": "context_length_exceeded"},
            ContextLengthExceeded,
            400,
        ),
        ({"message": "bad", "type": "BadRequestError", "code": 400}, InvalidRequest, 400),
        ({"message": "This model's maximum context length is 4096 tokens"}, ContextLengthExceeded, 400),
        ("plain text failure", UpstreamError, 500),
    ],
)
def test_stream_error_statuses(payload: Any, cls: type[RelayError], status: int) -> None:
    err = decode_stream_error(payload, provider="openai")
    assert type(err) is cls
    assert err.status == status


# --- errors ---------------------------------------------------------------------------------------


def decode_payload(name: str) -> RelayError:
    case = load(name)
    return decode_error(
        case["status"],
        case["headers"],
        json.dumps(case["body"]).encode(),
        provider="openai",
        now=NOW,
    )


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("error_429_rate_limit.json", RateLimited),
        ("error_429_insufficient_quota.json", RateLimited),
        ("error_500_no_retry.json", UpstreamError),
        ("error_503_overloaded.json", Overloaded),
        ("error_400_context_length.json", ContextLengthExceeded),
        ("error_400_invalid.json", InvalidRequest),
        ("error_400_content_filter_azure.json", ContentFiltered),
        ("error_401.json", UpstreamAuthError),
        ("error_403.json", UpstreamAuthError),
        ("error_404_model.json", NotFound),
        ("error_vllm_context_length.json", ContextLengthExceeded),
        ("error_llamacpp_context.json", ContextLengthExceeded),
        ("error_mistral_context.json", ContextLengthExceeded),
    ],
)
def test_error_payloads_map_to_canonical_classes(name: str, cls: type[RelayError]) -> None:
    err = decode_payload(name)
    assert type(err) is cls
    status = load(name)["status"]
    assert err.status == (502 if cls is UpstreamAuthError else status)
    assert err.provider == "openai"


def test_429_honours_retry_after_ms_and_should_retry() -> None:
    err = decode_payload("error_429_rate_limit.json")
    assert err.retry_after == 1.5
    assert err.should_retry is True
    assert "Rate limit reached" in err.message
    assert classify(err).retry


def test_500_with_x_should_retry_false_is_not_retried_but_fails_over() -> None:
    err = decode_payload("error_500_no_retry.json")
    assert err.should_retry is False
    verdict = classify(err)
    assert (verdict.retry, verdict.failover, verdict.breaker_failure) == (False, True, True)


def test_insufficient_quota_is_not_retried() -> None:
    err = decode_payload("error_429_insufficient_quota.json")
    assert err.should_retry is False
    assert classify(err).failover


def test_503_retry_after_seconds() -> None:
    assert decode_payload("error_503_overloaded.json").retry_after == 3.0


def test_context_length_keeps_param_and_fails_over() -> None:
    err = decode_payload("error_400_context_length.json")
    assert err.param == "messages"
    assert classify(err).failover
    assert not classify(err).retry


@pytest.mark.parametrize("name", ["error_401.json", "error_403.json"])
def test_credential_errors_use_a_fixed_message(name: str) -> None:
    err = decode_payload(name)
    status = load(name)["status"]
    assert err.message.startswith(f"openai rejected the configured credentials ({status});")
    assert "sk-" not in repr(err)


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (502, b"<html><body>502 Bad Gateway</body></html>", UpstreamError),
        (404, b'{"detail": "Not Found"}', NotFound),
        (400, b'{"error": "model \\"llama9\\" not found, try pulling it first"}', InvalidRequest),
        (413, b"", PayloadTooLarge),
        (408, b"timeout", Timeout),
    ],
)
def test_unusual_error_bodies(status: int, body: bytes, cls: type[RelayError]) -> None:
    err = decode_error(status, {}, body, provider="openai", now=NOW)
    assert isinstance(err, cls)
    assert err.status == status
    assert err.message.startswith("openai: ")


def test_long_error_messages_are_truncated() -> None:
    body = msgspec.json.encode({"error": {"message": "x" * 5000}})
    assert len(decode_error(400, {}, body, provider="openai", now=NOW).message) < 1100


def test_the_text_fast_path_encodes_exactly_what_the_general_path_does() -> None:
    chunks = [
        ChatChunk(text="He"),
        ChatChunk(text='llo "quoted" \\ back\nslash'),
        ChatChunk(text="caf\u00e9 \u2603 \U0001f600 \u0000 </script>"),
        ChatChunk(tool_calls=(ToolCallDelta(index=0, id="c", name="f", arguments="{}"),)),
        ChatChunk(text="after a tool call"),
        ChatChunk(finish_reason="stop"),
        ChatChunk(usage=Usage(input_tokens=3, output_tokens=4)),
    ]
    fast = ChatStreamEncoder(id="chatcmpl-1", model="m", created=7, include_usage=True)
    general = ChatStreamEncoder(id="chatcmpl-1", model="m", created=7, include_usage=True)
    for chunk in chunks:
        assert fast.encode_json(chunk) == [msgspec.json.encode(c) for c in general.encode(chunk)]
