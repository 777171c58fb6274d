"""The OpenAI provider against the fake OpenAI upstream over loopback HTTP (and through ``Relay``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
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
    ContentFiltered,
    ContextLengthExceeded,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    RelayError,
    StreamInterrupted,
    Timeout,
    UpstreamAuthError,
    UpstreamError,
)
from llmrelay.providers import create_provider
from llmrelay.providers.openai import OpenAIProvider, create
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
from tests.fakes.openai_upstream import OpenAIUpstream, Reply, StreamReply, fake_vector
from tests.fakes.server import serve

PAYLOADS = Path(__file__).parent.parent / "wire" / "payloads" / "openai"
KEY = "sk-test-0123456789abcdef"
WEATHER = Tool(name="get_weather", description="Weather", parameters={"type": "object"})


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_bytes())


@pytest.fixture
def fake() -> OpenAIUpstream:
    return OpenAIUpstream()


@pytest.fixture
async def base_url(fake: OpenAIUpstream) -> AsyncIterator[str]:
    async with serve(fake.app()) as url:
        yield url + "/v1"


def make(base_url: str, **fields: Any) -> OpenAIProvider:
    target: dict[str, Any] = {"provider": "openai", "model": "gpt-4o-mini", "base_url": base_url}
    target.update(fields)
    if isinstance(target.get("api_key"), str):
        target["api_key"] = KeySource(Secret(target["api_key"]))
    return create(TargetConfig(**target), TimeoutConfig(idle=5.0), SystemClock())


@pytest.fixture
async def provider(base_url: str) -> AsyncIterator[OpenAIProvider]:
    p = make(base_url, api_key=KEY, headers={"OpenAI-Organization": "org-test"})
    await p.open()
    try:
        yield p
    finally:
        await p.aclose()


def ctx() -> Context:
    return Context(clock=SystemClock(), request_id="req-123")


def chat(text: str = "Hello there", **fields: Any) -> ChatRequest:
    return ChatRequest(model="fast", messages=(text_message("user", text),), **fields)


async def unary(provider: OpenAIProvider, request: ChatRequest) -> ChatResponse:
    result = await provider.chat(request, ctx())
    assert isinstance(result, ChatResponse)
    return result


async def streamed(provider: OpenAIProvider, request: ChatRequest) -> ChatStream:
    result = await provider.chat(msgspec.structs.replace(request, stream=True), ctx())
    assert isinstance(result, ChatStream)
    return result


# --- chat -----------------------------------------------------------------------------------------


async def test_text_and_request_shape(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    response = await unary(provider, chat(max_tokens=20))
    assert response.text == "You said: Hello there"
    assert response.model == "gpt-4o-mini"
    assert response.provider == "openai"
    assert response.usage == Usage(input_tokens=2, output_tokens=4)
    sent = fake.last
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "gpt-4o-mini"  # the target's model, not the alias
    assert sent.json["max_tokens"] == 20  # not api.openai.com: the field every server knows
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["openai-organization"] == "org-test"
    assert sent.headers["x-client-request-id"] == "req-123"


async def test_no_api_key_sends_no_authorization(base_url: str, fake: OpenAIUpstream) -> None:
    p = make(base_url, model="llama3.1:8b")
    await p.open()
    try:
        await unary(p, chat())
    finally:
        await p.aclose()
    assert "authorization" not in fake.last.headers
    assert fake.last.json["model"] == "llama3.1:8b"


def test_max_tokens_field_by_host_and_option() -> None:
    assert make("https://api.openai.com/v1").max_tokens_field == "max_completion_tokens"
    assert make("http://127.0.0.1:11434/v1").max_tokens_field == "max_tokens"
    assert make(
        "http://vllm:8000/v1", options={"max_tokens_param": "max_completion_tokens"}
    ).max_tokens_field == ("max_completion_tokens")
    assert make("https://api.openai.com/v1", options={"max_tokens_param": "max_tokens"}).max_tokens_field == (
        "max_tokens"
    )


def test_unknown_options_are_config_errors() -> None:
    target = TargetConfig(provider="openai", model="m", options={"max_tokns_param": "auto"})
    with pytest.raises(ConfigError, match="max_tokns_param"):
        create_provider(target, TimeoutConfig(), SystemClock(), where="$.models[0].targets[0]")


async def test_extensions_reach_the_upstream(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    await unary(provider, chat(extensions={"openai": {"logprobs": True, "top_logprobs": 2}}))
    assert (fake.last.json["logprobs"], fake.last.json["top_logprobs"]) == (True, 2)


async def test_recorded_answer_with_usage_details(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(Reply(payload("chat_text.json")))
    response = await unary(provider, chat())
    assert response.id == "chatcmpl-CH2kWm1qv8mXr3bY5cZ9dE0fG7hIj"
    assert response.usage == Usage(input_tokens=2006, output_tokens=10, cached_input_tokens=1920)


async def test_streaming_text(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    stream = await streamed(provider, chat("one two three"))
    texts = [chunk.text async for chunk in stream]
    assert "".join(texts) == "You said: one two three"
    assert len([t for t in texts if t]) == 5
    final = stream.final()
    assert final.id == "chatcmpl-fake"
    assert final.finish_reason == "stop"
    assert final.usage.output_tokens == 5
    assert fake.last.json["stream"] is True
    assert fake.last.json["stream_options"] == {"include_usage": True}


async def test_recorded_stream_identity(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(StreamReply(payload("stream_text.json")[:-1]))
    stream = await streamed(provider, chat())
    assert (stream.id, stream.model, stream.created) == (
        "chatcmpl-CH2oS4gV5tB6mC7nD8oE9pF0qG1",
        "gpt-4o-mini-2024-07-18",
        1758011600,
    )
    final = await stream.collect()
    assert final.text == "Hello! How can I help?"
    assert final.usage == Usage(input_tokens=12, output_tokens=8)


async def test_tools_unary(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    response = await unary(provider, chat("Paris", tools=(WEATHER,), tool_choice=ToolChoice(mode="required")))
    assert response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_fake_0",
        "get_weather",
        {"text": "Paris"},
    )
    assert fake.last.json["tools"][0]["function"]["name"] == "get_weather"
    assert fake.last.json["tool_choice"] == "required"


async def test_tools_streamed(provider: OpenAIProvider) -> None:
    request = chat("Tokyo", tools=(WEATHER,), tool_choice=ToolChoice(mode="tool", name="get_weather"))
    final = await (await streamed(provider, request)).collect()
    assert final.finish_reason == "tool_calls"
    (call,) = final.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_fake_0",
        "get_weather",
        {"text": "Tokyo"},
    )


async def test_recorded_parallel_tool_stream(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(StreamReply(payload("stream_tool_calls.json")[:-1]))
    final = await (await streamed(provider, chat(tools=(WEATHER,)))).collect()
    assert [(c.name, json.loads(c.arguments)) for c in final.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]


async def test_json_mode(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    response = await unary(provider, chat("data", response_format=ResponseFormat(type="json_object")))
    assert json.loads(response.text) == {"echo": "data"}
    assert fake.last.json["response_format"] == {"type": "json_object"}


async def test_image_parts_reach_the_upstream(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    message = Message(
        role="user",
        content=(
            TextPart(text="Describe"),
            ImagePart(url="data:image/png;base64,iVBORw0KGgo=", detail="low"),
        ),
    )
    response = await unary(provider, ChatRequest(model="fast", messages=(message,)))
    assert response.text == "You said: Describe"
    assert fake.last.json["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
    }


# --- errors ---------------------------------------------------------------------------------------

ERRORS = [
    ("error_429_rate_limit.json", RateLimited),
    ("error_500_no_retry.json", UpstreamError),
    ("error_503_overloaded.json", Overloaded),
    ("error_400_context_length.json", ContextLengthExceeded),
    ("error_400_invalid.json", InvalidRequest),
    ("error_400_content_filter_azure.json", ContentFiltered),
    ("error_401.json", UpstreamAuthError),
    ("error_403.json", UpstreamAuthError),
    ("error_404_model.json", NotFound),
    ("error_vllm_context_length.json", ContextLengthExceeded),
]


@pytest.mark.parametrize(("name", "cls"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
async def test_error_statuses(
    provider: OpenAIProvider, fake: OpenAIUpstream, name: str, cls: type[RelayError], stream: bool
) -> None:
    case = payload(name)
    fake.script(Reply(case["body"], status=case["status"], headers=case["headers"]))
    with pytest.raises(cls) as info:
        await provider.chat(chat(stream=stream), ctx())
    assert type(info.value) is cls
    assert info.value.status == (502 if cls is UpstreamAuthError else case["status"])
    assert KEY not in info.value.message


async def test_429_headers_over_http(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    case = payload("error_429_rate_limit.json")
    fake.script(Reply(case["body"], status=429, headers=case["headers"]))
    with pytest.raises(RateLimited) as info:
        await unary(provider, chat())
    assert info.value.retry_after == 1.5
    assert info.value.should_retry is True


async def test_malformed_success_body(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(Reply(b"<html>proxy page</html>", headers={"content-type": "text/html"}))
    with pytest.raises(UpstreamError, match="malformed"):
        await unary(provider, chat())


async def test_error_event_before_first_chunk_raises_from_chat(
    provider: OpenAIProvider, fake: OpenAIUpstream
) -> None:
    error = payload("stream_error.json")[-1]
    fake.script(StreamReply([error], done=False))
    with pytest.raises(UpstreamError, match="server had an error"):
        await streamed(provider, chat())


async def test_error_event_after_first_chunk_interrupts(
    provider: OpenAIProvider, fake: OpenAIUpstream
) -> None:
    fake.script(StreamReply(payload("stream_error.json"), done=False))
    stream = await streamed(provider, chat())
    assert (await anext(stream)).text == "Partial"
    with pytest.raises(StreamInterrupted) as info:
        await anext(stream)
    assert isinstance(info.value.__cause__, UpstreamError)


async def test_drop_mid_stream_is_an_error(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(StreamReply(payload("stream_text.json")[:-1], drop_after=4))
    stream = await streamed(provider, chat())
    with pytest.raises(StreamInterrupted) as info:
        async for _ in stream:
            pass
    assert isinstance(info.value.__cause__, ConnectionFailed)
    assert not stream.done


async def test_clean_end_without_done_is_an_error(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(StreamReply(payload("stream_text.json")[:-1], done=False))
    stream = await streamed(provider, chat())
    with pytest.raises(StreamInterrupted) as info:
        async for _ in stream:
            pass
    assert isinstance(info.value.__cause__, ConnectionFailed)
    assert "[DONE]" in info.value.__cause__.message


async def test_drop_before_first_chunk_raises_from_chat(
    provider: OpenAIProvider, fake: OpenAIUpstream
) -> None:
    fake.script(StreamReply(payload("stream_text.json"), drop_after=1))
    with pytest.raises(ConnectionFailed):
        await streamed(provider, chat())


async def test_closing_early_disconnects_the_upstream(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    fake.script(StreamReply(payload("stream_text.json")[:3], done=False, hang_after=True))
    stream = await streamed(provider, chat())
    assert (await anext(stream)).text == "Hello"
    await stream.aclose()
    await asyncio.wait_for(fake.disconnected.wait(), timeout=5)


async def test_upstream_that_hangs_times_out(base_url: str, fake: OpenAIUpstream) -> None:
    fake.hold()
    p = create(
        TargetConfig(provider="openai", model="m", base_url=base_url), TimeoutConfig(idle=0.2), SystemClock()
    )
    await p.open()
    try:
        with pytest.raises(Timeout):
            await unary(p, chat())
    finally:
        fake.release()
        await p.aclose()
    assert fake.received.is_set()


async def test_unreachable_upstream(fake: OpenAIUpstream) -> None:
    async with serve(fake.app()) as url:
        dead = url + "/v1"
    p = make(dead, api_key=KEY)
    await p.open()
    try:
        with pytest.raises(ConnectionFailed) as info:
            await unary(p, chat())
    finally:
        await p.aclose()
    assert KEY not in str(info.value)


# --- embeddings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["float", "base64"])
async def test_embeddings(base_url: str, fake: OpenAIUpstream, encoding: str) -> None:
    p = make(base_url, model="text-embedding-3-small", options={"embedding_format": encoding})
    await p.open()
    try:
        response = await p.embed(EmbeddingRequest(model="embed", input=("a b", "c"), dimensions=4), ctx())
    finally:
        await p.aclose()
    assert response.vectors == [fake_vector("a b", 4), fake_vector("c", 4)]
    assert response.model == "text-embedding-3-small"
    assert response.usage == Usage(input_tokens=3)
    assert fake.last.path == "/v1/embeddings"
    assert fake.last.json["dimensions"] == 4
    assert fake.last.json.get("encoding_format", "float") == encoding


async def test_embedding_errors(provider: OpenAIProvider, fake: OpenAIUpstream) -> None:
    case = payload("error_429_rate_limit.json")
    fake.script(Reply(case["body"], status=429, headers=case["headers"]))
    with pytest.raises(RateLimited):
        await provider.embed(EmbeddingRequest(model="embed", input=("a",)), ctx())


# --- through Relay --------------------------------------------------------------------------------


def relay(base_url: str, model: str = "gpt-4o-mini") -> Relay:
    target = {"provider": "openai", "model": model, "api_key": "k", "base_url": base_url}
    return Relay.from_config({"models": [{"name": "fast", "targets": [target]}]})


async def test_relay_chat_with_tools(base_url: str, fake: OpenAIUpstream) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    async with relay(base_url) as r:
        response = await r.chat(
            model="fast",
            messages=[{"role": "user", "content": "Hi"}],
            tools=[tool],
            tool_choice="required",
            max_tokens=7,
        )
    assert response.tool_calls[0].name == "get_weather"
    assert fake.last.json["model"] == "gpt-4o-mini"
    assert fake.last.json["max_tokens"] == 7


async def test_relay_stream_and_embed(base_url: str) -> None:
    async with relay(base_url) as r:
        chunks = [
            chunk async for chunk in r.stream(model="fast", messages=[{"role": "user", "content": "Hi"}])
        ]
        embedded = await r.embed(model="fast", input=["a", "b"])
    assert "".join(c.text for c in chunks) == "You said: Hi"
    assert chunks[-1].usage is not None
    assert embedded.vectors == [fake_vector("a", 8), fake_vector("b", 8)]
