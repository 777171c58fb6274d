"""One alias, three providers: switching the target is a config change and the answers agree.

Each fake upstream speaks its provider's real wire format over loopback HTTP and answers the same
deterministic way (echo, JSON echo, forced tool call), so the canonical results must match.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmrelay import ChatResponse, Relay
from tests.fakes.anthropic_upstream import AnthropicUpstream
from tests.fakes.gemini_upstream import GeminiUpstream
from tests.fakes.openai_upstream import OpenAIUpstream
from tests.fakes.server import serve

PROVIDERS = ["openai", "anthropic", "gemini"]
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the weather in Oslo?"},
]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def relay_for(provider: str, base_url: str) -> Relay:
    base = base_url + "/v1" if provider == "openai" else base_url
    target = {"provider": provider, "model": "some-model", "api_key": "test-key", "base_url": base}
    return Relay.from_config({"models": [{"name": "fast", "targets": [target]}]})


@pytest.fixture(params=PROVIDERS)
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[Relay]:
    fake: Any = {"openai": OpenAIUpstream, "anthropic": AnthropicUpstream, "gemini": GeminiUpstream}[
        request.param
    ]()
    async with serve(fake.app()) as url, await relay_for(request.param, url) as r:
        yield r


async def test_text(relay: Relay) -> None:
    reply = await relay.chat("fast", MESSAGES, max_tokens=50, temperature=0.2)
    assert reply.text == "You said: What is the weather in Oslo?"
    assert reply.finish_reason == "stop"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.target is not None and reply.target.endswith("some-model")


async def test_stream_aggregates_to_the_unary_answer(relay: Relay) -> None:
    unary = await relay.chat("fast", MESSAGES)
    call = relay.stream("fast", MESSAGES)
    texts = [chunk.text async for chunk in call]
    streamed: ChatResponse = call.final()
    assert "".join(texts) == unary.text == streamed.text
    assert streamed.finish_reason == unary.finish_reason == "stop"
    assert streamed.usage.output_tokens > 0


async def test_forced_tool_call(relay: Relay) -> None:
    reply = await relay.chat(
        "fast", MESSAGES, tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}
    )
    assert reply.finish_reason == "tool_calls"
    [call] = reply.tool_calls
    assert call.name == "get_weather"
    assert isinstance(json.loads(call.arguments), dict)
    assert call.id


async def test_json_mode(relay: Relay) -> None:
    reply = await relay.chat("fast", MESSAGES, response_format={"type": "json_object"})
    assert json.loads(reply.text) == {"echo": "What is the weather in Oslo?"}
