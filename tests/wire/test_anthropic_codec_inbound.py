"""Anthropic codec, server direction: inbound requests, outbound messages, and the real SDK as client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from llmrelay.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    RelayError,
)
from llmrelay.types import (
    ChatChunk,
    ChatResponse,
    ImagePart,
    Message,
    Reasoning,
    ReasoningPart,
    TextPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
    text_message,
)
from llmrelay.wire.anthropic import encode_chat_request
from llmrelay.wire.anthropic_errors import encode_error
from llmrelay.wire.anthropic_inbound import decode_messages_request, encode_messages_response
from llmrelay.wire.anthropic_stream import AnthropicStreamEncoder
from tests.fakes.anthropic_upstream import sse
from tests.fakes.server import serve

FULL = Path(__file__).parent / "payloads" / "anthropic" / "request_full.json"


def body(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


# -- inbound requests ------------------------------------------------------------------------


def test_full_request_decodes_to_canonical() -> None:
    request = decode_messages_request(FULL.read_bytes())
    assert request.model == "claude-sonnet-4-5"
    assert request.max_tokens == 4096
    assert request.stream is True
    assert request.stop == ("\n\nHuman:",)
    assert request.user == "user-1234"
    assert request.messages == (
        text_message("system", "You are a weather assistant."),
        Message(
            role="system",
            content=(
                TextPart(
                    text="Answer briefly.", meta={"anthropic": {"cache_control": {"type": "ephemeral"}}}
                ),
            ),
        ),
        Message(
            role="user",
            content=(
                TextPart(text="What is the weather where this photo was taken?"),
                ImagePart(url="data:image/png;base64,iVBORw0KGgo="),
                ImagePart(url="https://example.com/street.jpg"),
            ),
        ),
        Message(
            role="assistant",
            content=(
                ReasoningPart(text="Looks like Paris.", signature="EqQBCgIYAhIM", provider="anthropic"),
                TextPart(text="Let me check."),
                ToolCallPart(id="toolu_01A", name="get_weather", arguments='{"location":"Paris"}'),
                ToolCallPart(id="toolu_01B", name="get_time", arguments='{"timezone":"Europe/Paris"}'),
            ),
        ),
        Message(role="tool", content=(ToolResultPart(tool_call_id="toolu_01A", content="18C, cloudy"),)),
        Message(
            role="tool",
            content=(ToolResultPart(tool_call_id="toolu_01B", content="time service down", is_error=True),),
        ),
        text_message("user", "Also, should I bring an umbrella?"),
    )
    assert request.tools[0] == Tool(
        name="get_weather",
        description="Current weather for a location.",
        parameters={
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    )
    assert request.tool_choice == ToolChoice(mode="auto")
    assert request.parallel_tool_calls is False
    assert request.reasoning == Reasoning(budget_tokens=2048)
    assert request.extensions == {"anthropic": {"top_k": 40}}


def test_inbound_then_upstream_encoding_preserves_the_request() -> None:
    original = json.loads(FULL.read_bytes())
    again = encode_chat_request(decode_messages_request(FULL.read_bytes()), model=original["model"])
    assert again["system"] == original["system"]  # blocks, because one carries cache_control
    for key in ("model", "max_tokens", "tools", "tool_choice", "stop_sequences", "top_k"):
        assert again[key] == original[key], key
    for key in ("metadata", "stream", "thinking"):
        assert again[key] == original[key], key
    user, assistant, results, follow_up = again["messages"]
    assert user == original["messages"][0]
    assert assistant["content"] == original["messages"][1]["content"]  # thinking kept, signed
    assert [b["tool_use_id"] for b in results["content"]] == ["toolu_01A", "toolu_01B"]
    assert results["content"][1]["is_error"] is True
    assert follow_up == {"role": "user", "content": "Also, should I bring an umbrella?"}


def test_string_system_and_tool_choice_variants() -> None:
    tool = {"name": "f", "input_schema": {"type": "object"}}
    request = decode_messages_request(
        body(system="Be brief.", tools=[tool], tool_choice={"type": "tool", "name": "f"})
    )
    assert request.messages[0] == text_message("system", "Be brief.")
    assert request.tool_choice == ToolChoice(mode="tool", name="f")
    assert request.parallel_tool_calls is None
    anyone = decode_messages_request(body(tools=[tool], tool_choice={"type": "any"}))
    assert anyone.tool_choice == ToolChoice(mode="required")
    none = decode_messages_request(body(tools=[tool], tool_choice={"type": "none"}))
    assert none.tool_choice == ToolChoice(mode="none")


def test_images_inside_tool_results_follow_as_user_content() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/s.png"}}
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "screenshot taken"}, image],
    }
    request = decode_messages_request(body(messages=[{"role": "user", "content": [result]}]))
    assert request.messages == (
        Message(role="tool", content=(ToolResultPart(tool_call_id="toolu_1", content="screenshot taken"),)),
        Message(role="user", content=(ImagePart(url="https://example.com/s.png"),)),
    )


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (body(model=None), "model"),
        (body(model=""), "model"),
        (body(max_tokens=None), "max_tokens"),
        (body(max_tokens="many"), "max_tokens"),
        (body(max_tokens=-1), "max_tokens"),
        (body(messages=None), "messages"),
        (body(messages=[]), "messages"),
        (body(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (body(messages=[{"content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (
            body(messages=[{"role": "user", "content": [{"type": "document"}]}]),
            "messages[0].content[0].type",
        ),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "base64", "media_type": "x"}}],
                    }
                ]
            ),
            "messages[0].content[0].source.data",
        ),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                    }
                ]
            ),
            "messages[0].content[0].type",
        ),
        (body(system=7), "system"),
        (body(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (body(tool_choice={"type": "tool"}), "tool_choice.name"),
        (body(temperature="hot"), "temperature"),
        (body(stop_sequences="END"), "stop_sequences"),
    ],
)
def test_bad_requests_name_the_field(raw: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_messages_request(raw)
    assert info.value.param == param
    assert info.value.status == 400


# -- outbound messages -----------------------------------------------------------------------

RESPONSE = ChatResponse(
    id="chatcmpl-123",
    model="gpt-4o-mini",
    created=0,
    message=Message(
        role="assistant",
        content=(
            TextPart(text="Checking."),
            ToolCallPart(id="call_1", name="get_weather", arguments='{"city": "Paris"}'),
            ToolCallPart(id="call_2", name="cut_short", arguments='{"city": "Par'),
        ),
    ),
    finish_reason="tool_calls",
    usage=Usage(input_tokens=120, output_tokens=30, cached_input_tokens=90, cache_write_input_tokens=10),
)


def test_encode_messages_response_is_a_valid_sdk_message() -> None:
    encoded = encode_messages_response(RESPONSE)
    message = anthropic.types.Message.model_validate(encoded)
    assert message.id == "msg_chatcmpl-123"
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Checking."
    assert message.content[1].type == "tool_use"
    assert message.content[1].input == {"city": "Paris"}
    assert message.content[2].type == "tool_use"
    assert message.content[2].input == {}
    assert message.usage.input_tokens == 20
    assert message.usage.cache_read_input_tokens == 90
    assert message.usage.cache_creation_input_tokens == 10
    assert message.usage.output_tokens == 30


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), (None, None)],
)
def test_finish_reasons_out(finish: Any, stop_reason: str | None) -> None:
    response = ChatResponse(
        id="msg_x", model="m", created=0, message=text_message("assistant", "x"), finish_reason=finish
    )
    encoded = encode_messages_response(response)
    assert encoded["stop_reason"] == stop_reason
    assert encoded["id"] == "msg_x"


# -- the real Anthropic SDK as a client of what we emit --------------------------------------

STREAM = [
    ChatChunk(text="Sunny "),
    ChatChunk(text="in Paris."),
    ChatChunk(tool_calls=(ToolCallDelta(index=0, id="call_1", name="get_weather"),)),
    ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments='{"city": '),)),
    ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments='"Paris"}'),)),
    ChatChunk(finish_reason="tool_calls"),
    ChatChunk(usage=Usage(input_tokens=40, output_tokens=12)),
]


def sdk_app(errors: dict[str, RelayError]) -> web.Application:
    """A minimal server face built only from the codec's encoders."""

    async def messages(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        err = errors.get(payload["messages"][0]["content"])
        if err is not None:
            return web.json_response(encode_error(err), status=err.status)
        if not payload.get("stream"):
            return web.json_response(encode_messages_response(RESPONSE))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        encoder = AnthropicStreamEncoder(id="chatcmpl-9", model="gpt-4o-mini", input_tokens=40)
        for chunk in STREAM:
            await response.write(sse(encoder.feed(chunk)))
        if payload["messages"][0]["content"] == "fail midway":
            await response.write(sse([("error", encode_error(Overloaded("Overloaded")))]))
        else:
            await response.write(sse(encoder.finish()))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    return app


ERRORS: dict[str, RelayError] = {
    "bad": InvalidRequest("messages: roles must alternate"),
    "long": ContextLengthExceeded("prompt is too long"),
    "missing": NotFound("model not found"),
    "slow down": RateLimited("rate limited", retry_after=3),
    "busy": Overloaded("Overloaded"),
}


async def test_sdk_reads_unary_and_streamed_messages() -> None:
    async with serve(sdk_app(ERRORS)) as base_url:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=base_url, max_retries=0)
        async with client:
            message = await client.messages.create(
                model="fast", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
            )
            assert message.content[1].type == "tool_use"
            assert message.content[1].input == {"city": "Paris"}
            async with client.messages.stream(
                model="fast", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
            ) as stream:
                texts = [text async for text in stream.text_stream]
                final = await stream.get_final_message()
    assert texts == ["Sunny ", "in Paris."]
    assert final.id == "msg_chatcmpl-9"
    assert final.content[0].type == "text"
    assert final.content[0].text == "Sunny in Paris."
    assert final.content[1].type == "tool_use"
    assert final.content[1].input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 40
    assert final.usage.output_tokens == 12


@pytest.mark.parametrize(
    ("prompt", "sdk_error", "error_type"),
    [
        ("bad", anthropic.BadRequestError, "invalid_request_error"),
        ("long", anthropic.BadRequestError, "invalid_request_error"),
        ("missing", anthropic.NotFoundError, "not_found_error"),
        ("slow down", anthropic.RateLimitError, "rate_limit_error"),
        ("busy", anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_sdk_raises_its_own_error_classes(
    prompt: str, sdk_error: type[anthropic.APIStatusError], error_type: str
) -> None:
    async with serve(sdk_app(ERRORS)) as base_url:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=base_url, max_retries=0)
        async with client:
            with pytest.raises(sdk_error) as info:
                await client.messages.create(
                    model="fast", max_tokens=10, messages=[{"role": "user", "content": prompt}]
                )
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"] == {"type": error_type, "message": ERRORS[prompt].message}


async def test_sdk_raises_on_an_error_event_mid_stream() -> None:
    async with serve(sdk_app(ERRORS)) as base_url:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=base_url, max_retries=0)
        async with client:
            with pytest.raises(anthropic.APIStatusError) as info:
                async with client.messages.stream(
                    model="fast", max_tokens=10, messages=[{"role": "user", "content": "fail midway"}]
                ) as stream:
                    await stream.get_final_message()
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "overloaded_error"
