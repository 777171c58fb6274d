"""The anthropic provider against the fake Anthropic API over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmrelay.clock import SystemClock
from llmrelay.config import KeySource, Secret, TargetConfig, TimeoutConfig
from llmrelay.context import Context
from llmrelay.errors import (
    ConfigError,
    ConnectionFailed,
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RelayError,
    StreamInterrupted,
    UpstreamAuthError,
    UpstreamError,
)
from llmrelay.providers.anthropic import AnthropicProvider, create
from llmrelay.relay import Relay
from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolChoice,
    Usage,
    text_message,
)
from tests.fakes.anthropic_upstream import AnthropicUpstream, Event, message_body, message_events
from tests.fakes.server import serve

PAYLOADS = Path(__file__).parent.parent / "wire" / "payloads" / "anthropic"
KEY = "sk-ant-test-key"
WEATHER = Tool(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}},
)


def recorded(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def recorded_events(name: str) -> list[Event]:
    return [(e["event"], e["data"]) for e in recorded(name)]


@dataclass
class Env:
    fake: AnthropicUpstream
    provider: AnthropicProvider
    base_url: str


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = AnthropicUpstream(api_key=KEY)
    async with serve(fake.app()) as base_url:
        provider = make(base_url, headers={"anthropic-beta": "test-beta"})
        await provider.open()
        try:
            yield Env(fake, provider, base_url)
        finally:
            await provider.aclose()


def make(base_url: str, *, key: str = KEY, **fields: Any) -> AnthropicProvider:
    target = TargetConfig(
        provider="anthropic", model="claude-test", api_key=KeySource(Secret(key)), base_url=base_url, **fields
    )
    return create(target, TimeoutConfig(), SystemClock())


def ctx() -> Context:
    return Context(clock=SystemClock())


def ask(text: str = "Hello there", **fields: Any) -> ChatRequest:
    return ChatRequest(model="fast", messages=(text_message("user", text),), **fields)


async def unary(env: Env, request: ChatRequest) -> ChatResponse:
    result = await env.provider.chat(request, ctx())
    assert isinstance(result, ChatResponse)
    return result


async def streamed(env: Env, request: ChatRequest) -> ChatStream:
    result = await env.provider.chat(msgspec.structs.replace(request, stream=True), ctx())
    assert isinstance(result, ChatStream)
    return result


# -- happy paths -----------------------------------------------------------------------------


async def test_text_reply_and_request_shape(env: Env) -> None:
    response = await unary(env, ask())
    assert response.text == "You said: Hello there"
    assert response.finish_reason == "stop"
    assert response.provider == "anthropic"
    assert response.id == "msg_fake_1"
    sent = env.fake.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "test-beta"
    assert sent.headers["content-type"] == "application/json"
    assert KEY not in json.dumps(sent.json)
    assert sent.json == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hello there"}],
    }


async def test_response_reports_the_upstream_model_and_usage(env: Env) -> None:
    env.fake.reply_json(recorded("message_tool_use.json"))
    response = await unary(env, ask(tools=(WEATHER,)))
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.usage == Usage(
        input_tokens=1950, output_tokens=61, cached_input_tokens=1800, cache_write_input_tokens=30
    )
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls[0].name == "get_weather"
    assert json.loads(response.tool_calls[0].arguments) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }


async def test_options_change_the_request(env: Env) -> None:
    provider = make(env.base_url, options={"default_max_tokens": 256, "anthropic_version": "2099-01-01"})
    await provider.open()
    try:
        await provider.chat(ask(), ctx())
    finally:
        await provider.aclose()
    sent = env.fake.requests[0]
    assert sent.json["max_tokens"] == 256
    assert sent.headers["anthropic-version"] == "2099-01-01"


async def test_streamed_text(env: Env) -> None:
    stream = await streamed(env, ask("one two three"))
    assert stream.id == "msg_fake_1"
    assert stream.model == "claude-test"
    texts = [chunk.text async for chunk in stream if chunk.text]
    assert texts == ["You", " said:", " one", " two", " three"]
    final = stream.final()
    assert final.text == "You said: one two three"
    assert final.finish_reason == "stop"
    assert final.usage.output_tokens > 0
    assert final.usage.input_tokens > 0
    assert env.fake.requests[0].json["stream"] is True


async def test_streamed_tool_use(env: Env) -> None:
    env.fake.reply_stream(recorded_events("stream_tool_use.json"))
    stream = await streamed(env, ask(tools=(WEATHER,)))
    final = await stream.collect()
    assert [c.name for c in final.tool_calls] == ["get_weather", "get_time"]
    assert json.loads(final.tool_calls[0].arguments) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert final.finish_reason == "tool_calls"
    assert final.model == "claude-sonnet-4-5-20250929"
    assert final.usage == Usage(input_tokens=472, output_tokens=89)


async def test_forced_tool_call(env: Env) -> None:
    request = ask(tools=(WEATHER,), tool_choice=ToolChoice(mode="tool", name="get_weather"))
    response = await unary(env, request)
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls[0].name == "get_weather"
    assert json.loads(response.tool_calls[0].arguments) == {"echo": "Hello there"}
    sent = env.fake.requests[0].json
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["tools"][0]["input_schema"] == WEATHER.parameters


SCHEMA = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}


@pytest.mark.parametrize("stream", [False, True])
async def test_json_schema_answer_comes_back_as_text(env: Env, stream: bool) -> None:
    fmt = ResponseFormat(type="json_schema", name="echo_answer", json_schema=SCHEMA)
    request = ask("Paris", response_format=fmt)
    if stream:
        response = await (await streamed(env, request)).collect()
    else:
        response = await unary(env, request)
    assert json.loads(response.text) == {"echo": "Paris"}
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"
    sent = env.fake.requests[0].json
    assert sent["tool_choice"] == {"type": "tool", "name": "echo_answer"}
    assert sent["tools"][0]["input_schema"] == SCHEMA


async def test_json_object_mode_uses_a_system_instruction(env: Env) -> None:
    response = await unary(env, ask("Paris", response_format=ResponseFormat(type="json_object")))
    assert json.loads(response.text) == {"echo": "Paris"}
    assert "JSON" in env.fake.requests[0].json["system"]


async def test_native_json_schema_mode(env: Env) -> None:
    provider = make(env.base_url, options={"json_schema_mode": "native"})
    await provider.open()
    try:
        fmt = ResponseFormat(type="json_schema", json_schema=SCHEMA)
        result = await provider.chat(ask("Paris", response_format=fmt), ctx())
    finally:
        await provider.aclose()
    assert isinstance(result, ChatResponse)
    assert json.loads(result.text) == {"echo": "Paris"}
    sent = env.fake.requests[0].json
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}


async def test_image_parts_reach_the_upstream_as_blocks(env: Env) -> None:
    message = Message(
        role="user",
        content=(
            TextPart(text="Describe"),
            ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
            ImagePart(url="https://example.com/a.png"),
        ),
    )
    await unary(env, ChatRequest(model="fast", messages=(message,)))
    assert env.fake.requests[0].json["messages"][0]["content"] == [
        {"type": "text", "text": "Describe"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]


async def test_embed_is_not_offered(env: Env) -> None:
    with pytest.raises(InvalidRequest, match="no embeddings API"):
        await env.provider.embed(EmbeddingRequest(model="x", input=("a",)), ctx())
    assert env.fake.requests == []


# -- errors ----------------------------------------------------------------------------------

ERRORS = [
    (400, "error_invalid_request.json", InvalidRequest),
    (400, "error_prompt_too_long.json", ContextLengthExceeded),
    (401, "error_authentication.json", UpstreamAuthError),
    (403, "error_permission.json", UpstreamAuthError),
    (404, "error_not_found.json", NotFound),
    (413, "error_request_too_large.json", PayloadTooLarge),
    (429, "error_rate_limit.json", RateLimited),
    (500, "error_api.json", UpstreamError),
    (529, "error_overloaded.json", Overloaded),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("status", "name", "kind"), ERRORS)
async def test_error_statuses_map_to_canonical_errors(
    env: Env, status: int, name: str, kind: type[RelayError], stream: bool
) -> None:
    env.fake.reply_json(recorded(name), status=status)
    with pytest.raises(RelayError) as info:
        await env.provider.chat(ask(stream=stream), ctx())
    assert type(info.value) is kind
    assert info.value.provider == "anthropic"


async def test_rate_limit_carries_retry_after(env: Env) -> None:
    env.fake.reply_json(recorded("error_rate_limit.json"), status=429, headers={"retry-after": "12"})
    with pytest.raises(RateLimited) as info:
        await unary(env, ask())
    assert info.value.retry_after == 12.0


async def test_wrong_key_is_an_upstream_auth_error_without_the_key(env: Env) -> None:
    provider = make(env.base_url, key="sk-ant-wrong-secret")
    await provider.open()
    try:
        with pytest.raises(UpstreamAuthError) as info:
            await provider.chat(ask(), ctx())
    finally:
        await provider.aclose()
    assert "sk-ant-wrong-secret" not in str(info.value)
    assert "sk-ant-wrong-secret" not in repr(info.value)


async def test_error_event_before_the_first_chunk_raises_from_chat(env: Env) -> None:
    events = recorded_events("stream_error_overloaded.json")
    env.fake.reply_stream([events[0], events[-1]])
    with pytest.raises(Overloaded):
        await streamed(env, ask())


async def test_error_event_after_the_first_chunk_interrupts_the_stream(env: Env) -> None:
    env.fake.reply_stream(recorded_events("stream_error_overloaded.json"))
    stream = await streamed(env, ask())
    first = await anext(stream)
    assert first.text == "Partial"
    with pytest.raises(StreamInterrupted) as info:
        await anext(stream)
    assert isinstance(info.value.__cause__, Overloaded)


async def test_connection_dropped_mid_stream_is_an_error(env: Env) -> None:
    events = message_events(message_body([{"type": "text", "text": "one two three"}]))
    env.fake.reply_stream(events, drop_after=5)  # start, block start, ping, "one", " two"
    stream = await streamed(env, ask())
    with pytest.raises(StreamInterrupted) as info:
        async for _ in stream:
            pass
    assert isinstance(info.value.__cause__, ConnectionFailed)


async def test_drop_before_any_chunk_raises_connection_failed_from_chat(env: Env) -> None:
    env.fake.reply_stream(recorded_events("stream_text.json"), drop_after=1)
    with pytest.raises(ConnectionFailed):
        await streamed(env, ask())


async def test_stream_ending_cleanly_without_message_stop_is_an_error(env: Env) -> None:
    events = recorded_events("stream_text.json")
    env.fake.reply_stream(events[:-1])
    stream = await streamed(env, ask())
    with pytest.raises(StreamInterrupted) as info:
        await stream.collect()
    assert isinstance(info.value.__cause__, ConnectionFailed)


async def test_closing_a_stream_early_disconnects_the_upstream(env: Env) -> None:
    env.fake.reply_stream(recorded_events("stream_text.json"), pause_after=4)
    stream = await streamed(env, ask())
    assert (await anext(stream)).text == "Hello"
    assert not env.fake.disconnected.is_set()
    await stream.aclose()
    await asyncio.wait_for(env.fake.disconnected.wait(), timeout=5)


# -- configuration ---------------------------------------------------------------------------


def test_create_validates_the_target() -> None:
    with pytest.raises(ConfigError, match="api_key"):
        create(TargetConfig(provider="anthropic", model="m"), TimeoutConfig(), SystemClock())
    with pytest.raises(ConfigError, match="model"):
        create(
            TargetConfig(provider="anthropic", api_key=KeySource(Secret("k"))), TimeoutConfig(), SystemClock()
        )
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        create(
            TargetConfig(provider="anthropic", model="m", api_key=KeySource(Secret("k")), options={"x": 1}),
            TimeoutConfig(),
            SystemClock(),
        )
    with pytest.raises(msgspec.ValidationError, match="default_max_tokens"):
        create(
            TargetConfig(
                provider="anthropic",
                model="m",
                api_key=KeySource(Secret("k")),
                options={"default_max_tokens": 0},
            ),
            TimeoutConfig(),
            SystemClock(),
        )
    auth_header = TargetConfig(provider="anthropic", model="m", headers={"Authorization": "Bearer t"})
    assert create(auth_header, TimeoutConfig(), SystemClock()).model == "m"


# -- through the Relay facade ----------------------------------------------------------------


def relay_config(base_url: str) -> dict[str, Any]:
    target = {"provider": "anthropic", "model": "claude-test", "api_key": KEY, "base_url": base_url}
    return {"models": [{"name": "fast", "targets": [target]}]}


async def test_relay_chat_stream_and_embed(env: Env) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    async with Relay.from_config(relay_config(env.base_url)) as relay:
        called = await relay.chat(
            "fast", [{"role": "user", "content": "Hi"}], tools=[tool], tool_choice="required"
        )
        texts = [c.text async for c in relay.stream("fast", [{"role": "user", "content": "Hi you"}])]
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
        answer = await relay.chat("fast", [{"role": "user", "content": "Oslo"}], response_format=fmt)
        with pytest.raises(InvalidRequest, match="no embeddings API"):
            await relay.embed("fast", ["a"])
    assert called.tool_calls[0].name == "lookup"
    assert called.provider == "anthropic"
    assert "".join(texts) == "You said: Hi you"
    assert json.loads(answer.text) == {"echo": "Oslo"}
    assert [r.json["model"] for r in env.fake.requests] == ["claude-test"] * 3
    assert env.fake.requests[0].json["tool_choice"] == {"type": "any"}
