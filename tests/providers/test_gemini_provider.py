"""The Gemini provider against the fake Gemini upstream over loopback HTTP."""

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
from llmrelay.providers.gemini import GeminiProvider, create
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
from tests.fakes.gemini_upstream import GeminiUpstream, unit_vector
from tests.fakes.server import serve

PAYLOADS = Path(__file__).parent.parent / "wire" / "payloads" / "gemini"
KEY = "AIzaSy-test-key-0123456789"


def _payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_bytes())


@pytest.fixture
def fake() -> GeminiUpstream:
    return GeminiUpstream(api_key=KEY)


@pytest.fixture
async def base_url(fake: GeminiUpstream) -> AsyncIterator[str]:
    async with serve(fake.app()) as url:
        yield url


@pytest.fixture
async def provider(base_url: str) -> AsyncIterator[GeminiProvider]:
    p = _provider(base_url)
    await p.open()
    try:
        yield p
    finally:
        await p.aclose()


def _provider(base_url: str, **target: Any) -> GeminiProvider:
    fields: dict[str, Any] = {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "api_key": KeySource(Secret(KEY)),
        "base_url": base_url,
        **target,
    }
    return create(TargetConfig(**fields), TimeoutConfig(), SystemClock())


def _ctx() -> Context:
    return Context(clock=SystemClock())


def _chat(text: str = "Hi there", **fields: Any) -> ChatRequest:
    return ChatRequest(model="fast", messages=(text_message("user", text),), **fields)


async def _unary(provider: GeminiProvider, request: ChatRequest) -> ChatResponse:
    result = await provider.chat(request, _ctx())
    assert isinstance(result, ChatResponse)
    return result


async def _open_stream(provider: GeminiProvider, request: ChatRequest) -> ChatStream:
    result = await provider.chat(msgspec.structs.replace(request, stream=True), _ctx())
    assert isinstance(result, ChatStream)
    return result


# -- requests and answers ------------------------------------------------------------------------


async def test_text_sends_target_model_key_header_and_decodes(
    provider: GeminiProvider, fake: GeminiUpstream
) -> None:
    response = await _unary(provider, _chat("Hi there"))
    assert response.text == "You said: Hi there"
    assert response.finish_reason == "stop"
    assert response.model == "gemini-2.5-flash"
    assert response.provider == "gemini"
    [sent] = fake.requests
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.query == {}
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.json["contents"] == [{"role": "user", "parts": [{"text": "Hi there"}]}]


async def test_recorded_reply_and_usage(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_json(_payload("generate_thinking_cached.json"))
    response = await _unary(provider, _chat())
    assert response.text == "42"
    assert response.id == "Xk62aOCGG8-Uz7IP4aKQ8Ac"
    assert response.model == "gemini-2.5-pro"
    assert response.usage == Usage(
        input_tokens=4120, output_tokens=317, cached_input_tokens=4096, reasoning_tokens=316
    )


async def test_options_headers_and_model_prefix(base_url: str, fake: GeminiUpstream) -> None:
    p = _provider(
        base_url,
        model="models/gemini-2.0-flash",
        headers={"x-tenant": "blue"},
        options={"api_version": "v1alpha"},
    )
    await p.open()
    try:
        await _unary(p, _chat())
    finally:
        await p.aclose()
    assert fake.requests[0].path == "/v1alpha/models/gemini-2.0-flash:generateContent"
    assert fake.requests[0].headers["x-tenant"] == "blue"


def test_invalid_options_are_rejected_at_create() -> None:
    with pytest.raises(msgspec.ValidationError):
        _provider("http://127.0.0.1:1", options={"api_version": "../v1"})
    with pytest.raises(msgspec.ValidationError):
        _provider("http://127.0.0.1:1", options={"apiversion": "v1"})


async def test_tools_forced_call(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    tools = (
        Tool(name="get_time", parameters={"type": "object", "properties": {}}),
        Tool(name="get_weather", parameters={"type": "object"}),
    )
    request = _chat(tools=tools, tool_choice=ToolChoice(mode="tool", name="get_weather"))
    response = await _unary(provider, request)
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == "{}"
    sent = fake.requests[0].json
    assert sent["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["get_weather"],
    }
    assert [d["name"] for d in sent["tools"][0]["functionDeclarations"]] == ["get_time", "get_weather"]


async def test_recorded_parallel_calls(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_json(_payload("generate_function_calls.json"))
    response = await _unary(provider, _chat(tools=(Tool(name="get_weather"),)))
    assert [json.loads(c.arguments)["city"] for c in response.tool_calls] == ["Paris", "London"]
    assert response.finish_reason == "tool_calls"


async def test_json_mode(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}}
    request = _chat("ping", response_format=ResponseFormat(type="json_schema", name="e", json_schema=schema))
    response = await _unary(provider, request)
    assert json.loads(response.text) == {"echo": "ping"}
    config = fake.requests[0].json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


async def test_image_parts(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    message = Message(
        role="user",
        content=(
            TextPart(text="What is this?"),
            ImagePart(url="data:image/webp;base64,UklGRg=="),
            ImagePart(url="https://example.com/a.png"),
        ),
    )
    await _unary(provider, ChatRequest(model="fast", messages=(message,)))
    assert fake.requests[0].json["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"fileData": {"fileUri": "https://example.com/a.png", "mimeType": "image/png"}},
    ]


async def test_embeddings(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    request = EmbeddingRequest(model="embed", input=("alpha", "beta"), dimensions=4)
    response = await provider.embed(request, _ctx())
    assert response.vectors == [unit_vector("alpha", 4), unit_vector("beta", 4)]
    assert response.provider == "gemini"
    sent = fake.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:batchEmbedContents"
    assert sent.json["requests"][1] == {
        "model": "models/gemini-2.5-flash",
        "content": {"parts": [{"text": "beta"}]},
        "outputDimensionality": 4,
    }


# -- streaming -----------------------------------------------------------------------------------


async def test_streaming_default_echo(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    stream = await _open_stream(provider, _chat("one two three"))
    pieces = [chunk.text async for chunk in stream if chunk.text]
    assert len(pieces) > 1
    final = stream.final()
    assert final.text == "You said: one two three"
    assert final.finish_reason == "stop"
    assert final.usage.output_tokens > 0
    assert stream.id == f"fake-{len(fake.requests)}"
    sent = fake.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert "key" not in sent.query


async def test_streaming_recorded_text_and_usage(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_stream(_payload("stream_text.json"))
    stream = await _open_stream(provider, _chat())
    assert stream.id == "qYi2aIL2Hr2D1MkP5rPqqQk"
    assert stream.model == "gemini-2.5-flash"
    response = await stream.collect()
    assert response.text == "The capital of France is Paris."
    assert response.usage == Usage(input_tokens=8, output_tokens=33, reasoning_tokens=26)


async def test_streaming_tool_calls(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_stream(_payload("stream_function_calls.json"))
    response = await (await _open_stream(provider, _chat(tools=(Tool(name="get_weather"),)))).collect()
    assert response.text == "Let me look that up."
    assert [c.name for c in response.tool_calls] == ["get_weather", "get_time"]
    assert response.finish_reason == "tool_calls"


async def test_error_event_before_first_chunk_raises_from_chat(
    provider: GeminiProvider, fake: GeminiUpstream
) -> None:
    fake.reply_stream(_payload("stream_error_event.json")[1:])
    with pytest.raises(Overloaded):
        await _open_stream(provider, _chat())


async def test_error_event_after_first_chunk_interrupts_the_stream(
    provider: GeminiProvider, fake: GeminiUpstream
) -> None:
    fake.reply_stream(_payload("stream_error_event.json"))
    stream = await _open_stream(provider, _chat())
    with pytest.raises(StreamInterrupted) as info:
        async for _ in stream:
            pass
    assert isinstance(info.value.__cause__, Overloaded)


async def test_blocked_prompt_in_stream_raises_before_commit(
    provider: GeminiProvider, fake: GeminiUpstream
) -> None:
    fake.reply_stream(_payload("stream_blocked_prompt.json"))
    with pytest.raises(ContentFiltered):
        await _open_stream(provider, _chat())


async def test_mid_stream_drop_is_an_error(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_stream(_payload("stream_text.json"), drop_after=1)
    stream = await _open_stream(provider, _chat())
    with pytest.raises(StreamInterrupted) as info:
        async for _ in stream:
            pass
    assert isinstance(info.value.__cause__, ConnectionFailed)


async def test_clean_end_without_finish_reason_is_an_error(
    provider: GeminiProvider, fake: GeminiUpstream
) -> None:
    fake.reply_stream(_payload("stream_text.json")[:2])
    stream = await _open_stream(provider, _chat())
    with pytest.raises(StreamInterrupted) as info:
        async for _ in stream:
            pass
    assert isinstance(info.value.__cause__, ConnectionFailed)


async def test_drop_before_any_event_raises_from_chat(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_stream(_payload("stream_text.json"), drop_after=0)
    with pytest.raises(ConnectionFailed):
        await _open_stream(provider, _chat())


async def test_closing_a_stream_early_disconnects_the_upstream(
    provider: GeminiProvider, fake: GeminiUpstream
) -> None:
    fake.reply_stream(_payload("stream_text.json"), pause_after=1)
    stream = await _open_stream(provider, _chat())
    first = await anext(stream)
    assert first.text == "The capital"
    assert not fake.disconnected.is_set()
    await stream.aclose()
    await asyncio.wait_for(fake.disconnected.wait(), timeout=5)


# -- errors --------------------------------------------------------------------------------------


ERRORS = [
    (429, "error_resource_exhausted.json", RateLimited),
    (400, "error_api_key_invalid.json", UpstreamAuthError),
    (401, "error_unauthenticated.json", UpstreamAuthError),
    (403, "error_permission_denied.json", UpstreamAuthError),
    (400, "error_invalid_argument.json", InvalidRequest),
    (400, "error_token_limit.json", ContextLengthExceeded),
    (404, "error_not_found.json", NotFound),
    (503, "error_unavailable.json", Overloaded),
    (500, "error_internal.json", UpstreamError),
    (504, "error_deadline_exceeded.json", Timeout),
]


@pytest.mark.parametrize(("status", "name", "kind"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
async def test_error_status_maps_to_canonical_class(
    provider: GeminiProvider,
    fake: GeminiUpstream,
    status: int,
    name: str,
    kind: type[RelayError],
    stream: bool,
) -> None:
    fake.reply_json(_payload(name), status=status)
    with pytest.raises(kind) as info:
        await provider.chat(_chat(stream=stream), _ctx())
    assert type(info.value) is kind
    assert info.value.provider == "gemini"
    assert KEY not in info.value.message
    assert KEY not in repr(info.value)


async def test_embedding_errors_are_mapped(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_json(_payload("error_not_found.json"), status=404)
    with pytest.raises(NotFound):
        await provider.embed(EmbeddingRequest(model="e", input=("x",)), _ctx())


async def test_rate_limit_carries_retry_info_delay(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_json(_payload("error_resource_exhausted.json"), status=429)
    fake.reply_json(_payload("error_resource_exhausted_plain.json"), status=429, headers={"Retry-After": "3"})
    with pytest.raises(RateLimited) as first:
        await provider.chat(_chat(), _ctx())
    with pytest.raises(RateLimited) as second:
        await provider.chat(_chat(), _ctx())
    assert first.value.retry_after == 15.0
    assert second.value.retry_after == 3.0


async def test_wrong_key_is_an_upstream_auth_error(base_url: str, fake: GeminiUpstream) -> None:
    p = _provider(base_url, api_key=KeySource(Secret("AIzaSy-wrong")))
    await p.open()
    try:
        with pytest.raises(UpstreamAuthError) as info:
            await p.chat(_chat(), _ctx())
    finally:
        await p.aclose()
    assert "AIzaSy-wrong" not in info.value.message
    assert fake.requests[0].headers["x-goog-api-key"] == "AIzaSy-wrong"


async def test_non_json_gateway_error(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.reply_raw(502, b"<html><body>Bad Gateway</body></html>", headers={"Content-Type": "text/html"})
    with pytest.raises(UpstreamError) as info:
        await provider.chat(_chat(), _ctx())
    assert info.value.message == "gemini: upstream returned 502 (text/html, 37 B)"


async def test_unreachable_upstream_is_a_connection_failure(base_url: str) -> None:
    async with serve(GeminiUpstream().app()) as url:
        dead_url = url
    p = _provider(dead_url)
    await p.open()
    try:
        with pytest.raises(ConnectionFailed):
            await p.chat(_chat(), _ctx())
    finally:
        await p.aclose()


async def test_hold_and_release(provider: GeminiProvider, fake: GeminiUpstream) -> None:
    fake.hold()
    call = asyncio.create_task(provider.chat(_chat("held"), _ctx()))
    await asyncio.wait_for(fake.arrived.wait(), timeout=5)
    assert not call.done()
    fake.release()
    response = await asyncio.wait_for(call, timeout=5)
    assert isinstance(response, ChatResponse)
    assert response.text == "You said: held"


async def test_cancelled_held_request_is_seen_as_a_disconnect(
    provider: GeminiProvider, fake: GeminiUpstream
) -> None:
    fake.hold()
    call = asyncio.create_task(provider.chat(_chat(), _ctx()))
    await asyncio.wait_for(fake.arrived.wait(), timeout=5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(fake.disconnected.wait(), timeout=5)


# -- through Relay -------------------------------------------------------------------------------


def _relay_config(base_url: str) -> dict[str, Any]:
    target = {"provider": "gemini", "model": "gemini-2.5-flash", "api_key": KEY, "base_url": base_url}
    return {"models": [{"name": "fast", "targets": [target]}]}


async def test_relay_tool_round_trip_with_openai_style_messages(base_url: str, fake: GeminiUpstream) -> None:
    from llmrelay.relay import Relay

    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    async with Relay.from_config(_relay_config(base_url)) as relay:
        first = await relay.chat(
            model="fast",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[tool],
            tool_choice="required",
        )
        [call] = first.tool_calls
        second = await relay.chat(
            model="fast",
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": call.arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
            ],
            tools=[tool],
            max_tokens=50,
        )
    assert call.name == "get_weather"
    assert second.text.startswith("You said:")
    sent = fake.requests[1].json
    assert all(r.path.endswith("/gemini-2.5-flash:generateContent") for r in fake.requests)
    assert sent["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {}}}],
    }
    assert sent["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}],
    }
    assert sent["generationConfig"]["maxOutputTokens"] == 50


async def test_relay_stream_and_embed(base_url: str, fake: GeminiUpstream) -> None:
    from llmrelay.relay import Relay

    async with Relay.from_config(_relay_config(base_url)) as relay:
        texts = [
            c.text async for c in relay.stream(model="fast", messages=[{"role": "user", "content": "a b"}])
        ]
        embedded = await relay.embed(model="fast", input=["a", "b"])
    assert "".join(texts) == "You said: a b"
    assert embedded.vectors == [unit_vector("a", 8), unit_vector("b", 8)]
