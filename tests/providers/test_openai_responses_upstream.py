"""An ``openai`` target with ``options: {api: responses}``: chat calls go to ``POST /v1/responses``.

Against the fake OpenAI upstream over loopback HTTP, whose Responses answers are written from
OpenAI's reference independently of llmrelay's codecs (:mod:`tests.fakes.openai_responses_fake`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmrelay.clock import SystemClock
from llmrelay.config import KeySource, Secret, TargetConfig, TimeoutConfig
from llmrelay.context import Context
from llmrelay.errors import ConfigError, InvalidRequest, RateLimited, StreamInterrupted
from llmrelay.providers import create_provider
from llmrelay.providers.openai import OpenAIProvider, create
from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    ReasoningPart,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
    text_message,
)
from tests.fakes.openai_upstream import OpenAIUpstream, Reply, StreamReply
from tests.fakes.server import serve

PAYLOADS = Path(__file__).parent.parent / "wire" / "payloads" / "openai"
KEY = "sk-test-0123456789abcdef"
WEATHER = Tool(name="get_weather", parameters={"type": "object"})


@pytest.fixture
def fake() -> OpenAIUpstream:
    return OpenAIUpstream()


@pytest.fixture
async def provider(fake: OpenAIUpstream) -> AsyncIterator[OpenAIProvider]:
    async with serve(fake.app()) as url:
        target = TargetConfig(
            provider="openai",
            model="gpt-5-mini",
            base_url=url + "/v1",
            api_key=KeySource(Secret(KEY)),
            options={"api": "responses"},
        )
        p = create(target, TimeoutConfig(idle=5.0), SystemClock())
        await p.open()
        try:
            yield p
        finally:
            await p.aclose()


def ctx() -> Context:
    return Context(clock=SystemClock(), request_id="req-9")


def chat(text: str = "Hello there", **fields: Any) -> ChatRequest:
    return ChatRequest(model="fast", messages=(text_message("user", text),), **fields)


async def unary(provider: OpenAIProvider, request: ChatRequest) -> ChatResponse:
    result = await provider.chat(request, ctx())
    assert isinstance(result, ChatResponse)
    return result


async def test_text_and_the_body_sent(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    request = ChatRequest(
        model="fast",
        messages=(
            text_message("system", "Be brief"),
            Message(role="user", content=(TextPart(text="Hello there"), ImagePart(url="https://x/y.png"))),
        ),
        max_tokens=50,
        temperature=0.5,
    )
    response = await unary(provider, request)
    assert response.text == "You said: Hello there" and response.finish_reason == "stop"
    assert response.usage.output_tokens == 5 and response.provider == "openai"
    sent = fake.last
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json == {
        "model": "gpt-5-mini",
        "input": [
            {"role": "developer", "content": "Be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Hello there"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"},
                ],
            },
        ],
        "store": False,
        "temperature": 0.5,
        "max_output_tokens": 50,
    }


async def test_a_tool_turn_round_trip(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    first = await unary(
        provider, chat(tools=(WEATHER,), tool_choice=ToolChoice(mode="tool", name="get_weather"))
    )
    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"text": "Hello there"}
    assert fake.last.json["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert fake.last.json["tools"][0]["strict"] is False
    history = (
        text_message("user", "Hello there"),
        Message(
            role="assistant",
            content=(ReasoningPart(text="x", signature="anthropic-only", provider="anthropic"), call),
        ),
        Message(role="tool", content=(ToolResultPart(tool_call_id=call.id, content="sunny"),)),
    )
    await unary(provider, ChatRequest(model="fast", messages=history, tools=(WEATHER,)))
    assert fake.last.json["input"][1:] == [
        {"type": "function_call", "call_id": call.id, "name": "get_weather", "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.id, "output": "sunny"},
    ]  # another provider's reasoning is left out


async def test_json_schema_and_incomplete(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fmt = ResponseFormat(type="json_schema", name="e", json_schema={"type": "object"}, strict=True)
    response = await unary(provider, chat(response_format=fmt))
    assert json.loads(response.text) == {"echo": "Hello there"}
    assert fake.last.json["text"] == {
        "format": {"type": "json_schema", "name": "e", "schema": {"type": "object"}, "strict": True}
    }
    cut = await unary(provider, chat(max_tokens=1))
    assert cut.finish_reason == "length"


async def test_stream_text_and_tool_call(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    result = await provider.chat(chat(stream=True), ctx())
    assert isinstance(result, ChatStream)
    final = await result.collect()
    assert final.text == "You said: Hello there" and final.finish_reason == "stop"
    assert final.usage.output_tokens == 5 and result.id == "resp_fake0123456789"
    called = await provider.chat(
        chat(stream=True, tools=(WEATHER,), tool_choice=ToolChoice(mode="required")), ctx()
    )
    assert isinstance(called, ChatStream)
    answer = await called.collect()
    assert answer.finish_reason == "tool_calls"
    assert answer.tool_calls == (
        ToolCallPart(id="call_fake_0", name="get_weather", arguments=json.dumps({"text": "Hello there"})),
    )


async def test_the_recorded_openai_stream_decodes(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    for name, check in (
        ("responses_stream_text.json", lambda r: r.text == "Hello! How can I help?"),
        ("responses_stream_function_call.json", lambda r: r.tool_calls[0].arguments == '{"city":"Paris"}'),
    ):
        fake.script(StreamReply(json.loads((PAYLOADS / name).read_text()), done=False, named=True))
        result = await provider.chat(chat(stream=True), ctx())
        assert isinstance(result, ChatStream)
        final = await result.collect()
        assert check(final), name
        assert final.usage.input_tokens == 12


async def test_errors(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(Reply({"error": {"message": "slow down", "type": "rate_limit_error", "code": None}}, 429))
    with pytest.raises(RateLimited):
        await unary(provider, chat())
    failed = {
        "id": "r",
        "object": "response",
        "status": "failed",
        "output": [],
        "error": {"code": "server_error", "message": "boom"},
    }
    fake.script(Reply(failed))
    with pytest.raises(Exception, match="boom"):
        await unary(provider, chat())
    events = json.loads((PAYLOADS / "responses_stream_text.json").read_text())[:5]
    events.append(
        {
            "type": "error",
            "code": "server_error",
            "message": "upstream broke",
            "param": None,
            "sequence_number": 5,
        }
    )
    fake.script(StreamReply(events, done=False, named=True))
    stream = await provider.chat(chat(stream=True), ctx())
    assert isinstance(stream, ChatStream)
    with pytest.raises(StreamInterrupted, match="upstream broke"):
        await stream.collect()
    with pytest.raises(InvalidRequest) as refused:
        await unary(provider, chat(stop=("END",)))
    assert refused.value.param == "stop"
    with pytest.raises(InvalidRequest) as knob:
        await unary(
            provider,
            ChatRequest(model="f", messages=chat().messages, extensions={"openai": {"logprobs": True}}),
        )
    assert knob.value.param == "logprobs"


async def test_a_stream_cut_before_its_last_event_is_an_error(
    provider: OpenAIProvider, fake: OpenAIUpstream
) -> None:
    events = json.loads((PAYLOADS / "responses_stream_text.json").read_text())
    fake.script(StreamReply(events[:-1], done=False, named=True))
    stream = await provider.chat(chat(stream=True), ctx())
    assert isinstance(stream, ChatStream)
    with pytest.raises(StreamInterrupted, match=r"before response\.completed"):
        await stream.collect()


def test_azure_does_not_take_the_responses_api() -> None:
    target = TargetConfig(
        provider="azure", model="d", base_url="https://x.openai.azure.com", options={"api": "responses"}
    )
    with pytest.raises(ConfigError, match="Chat Completions only"):
        create_provider(target, TimeoutConfig(), SystemClock(), where="$.models[0].targets[0]")


def test_usage_decodes_cached_and_reasoning() -> None:
    from llmrelay.wire.openai_responses_upstream import decode_usage

    usage = {
        "input_tokens": 9,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 3},
    }
    assert decode_usage(usage) == Usage(
        input_tokens=9, output_tokens=7, cached_input_tokens=4, reasoning_tokens=3
    )
    assert msgspec.json.decode(msgspec.json.encode(decode_usage(None))) == {}
