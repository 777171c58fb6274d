"""The official ``anthropic`` SDK against a running ``llmrelay serve`` with fake upstreams."""

from __future__ import annotations

import anthropic
import pytest

from tests.e2e.conftest import APP_KEY, Upstreams
from tests.e2e.gateway import Gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello gateway"}]


def client(gateway: Gateway, key: str = APP_KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=20)


@pytest.mark.parametrize("model", ["claude", "gpt", "gem", "mock"])
async def test_messages_through_every_provider(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    reply = await client(gateway).messages.create(model=model, max_tokens=64, messages=HELLO)
    assert reply.type == "message" and reply.role == "assistant"
    assert reply.content[0].type == "text"
    assert reply.content[0].text == ("mock says hi" if model == "mock" else "You said: Hello gateway")
    assert reply.stop_reason == "end_turn"
    assert reply.usage.output_tokens > 0


async def test_bearer_auth_is_accepted_too(gateway: Gateway) -> None:
    c = anthropic.AsyncAnthropic(base_url=gateway.url, auth_token=APP_KEY, max_retries=0)
    reply = await c.messages.create(model="mock", max_tokens=16, messages=HELLO)
    assert reply.content[0].type == "text"


@pytest.mark.parametrize("model", ["claude", "gpt", "gem"])
async def test_streaming_named_events(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    async with client(gateway).messages.stream(model=model, max_tokens=64, messages=HELLO) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds
    assert final.content[0].type == "text" and final.content[0].text == "You said: Hello gateway"


@pytest.mark.parametrize("model", ["claude", "gpt"])
async def test_tool_use(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    reply = await client(gateway).messages.create(
        model=model,
        max_tokens=64,
        messages=HELLO,
        tools=[
            {"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}
        ],
        tool_choice={"type": "tool", "name": "lookup"},
    )
    assert reply.stop_reason == "tool_use"
    block = reply.content[-1]
    assert block.type == "tool_use" and block.name == "lookup" and isinstance(block.input, dict)


async def test_errors_in_anthropic_shape(gateway: Gateway, upstreams: Upstreams) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await client(gateway, "sk-nope").messages.create(model="claude", max_tokens=8, messages=HELLO)
    assert auth.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        await client(gateway).messages.create(model="nope", max_tokens=8, messages=HELLO)
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client(gateway).messages.create(model="claude", max_tokens=8, messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    upstreams.anthropic.reply_error(529, "overloaded_error", "Overloaded")
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        await client(gateway).messages.create(model="claude", max_tokens=8, messages=HELLO)
    assert overloaded.value.status_code == 529


async def test_mid_stream_error_event(gateway: Gateway, upstreams: Upstreams) -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "part"}}
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstreams.anthropic.reply_stream(
        [
            ("message_start", start),
            ("content_block_start", block),
            ("content_block_delta", delta),
            ("error", error),
        ]
    )
    texts = []
    with pytest.raises(anthropic.APIStatusError):
        async with client(gateway).messages.stream(model="claude", max_tokens=8, messages=HELLO) as stream:
            async for text in stream.text_stream:
                texts.append(text)
    assert texts == ["part"]
