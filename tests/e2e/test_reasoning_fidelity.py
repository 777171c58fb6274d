"""Thinking, signatures and prompt caching through the running server's Anthropic face.

The official ``anthropic`` SDK talks to ``llmrelay serve``, which talks to the fake Anthropic
upstream: a tool-use conversation with thinking must reach the upstream with every thinking block,
signature and ``cache_control`` exactly as the client sent them, unary and streamed; and an OpenAI
client's ``reasoning_effort`` must reach Anthropic as a thinking budget.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import APP_KEY, Upstreams
from tests.e2e.gateway import Gateway
from tests.fakes.anthropic_upstream import message_body, message_events

pytestmark = pytest.mark.asyncio(loop_scope="module")

THINKING = {"type": "thinking", "thinking": "I should look it up.", "signature": "EqQBCgIYAh+/IM1gbcDa9G=="}
REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a=="}
CALL = {"type": "tool_use", "id": "toolu_e2e", "name": "lookup", "input": {"q": "Oslo"}}
TOOLS: list[Any] = [
    {"name": "lookup", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}
]
CACHED_USER = {"type": "text", "text": "Weather in Oslo?", "cache_control": {"type": "ephemeral"}}


def client(gateway: Gateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=APP_KEY, max_retries=0, timeout=20)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_thinking_tool_use_turn_goes_back_to_anthropic_unchanged(
    gateway: Gateway, upstreams: Upstreams, stream: bool
) -> None:
    first = message_body([THINKING, REDACTED, CALL], stop_reason="tool_use")
    upstreams.anthropic.reply_stream(message_events(first)) if stream else upstreams.anthropic.reply_json(
        first
    )
    upstreams.anthropic.reply_json(message_body([{"type": "text", "text": "Sunny."}]))
    c = client(gateway)
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    messages: list[Any] = [{"role": "user", "content": [CACHED_USER]}]
    if stream:
        async with c.messages.stream(
            model="claude", max_tokens=2048, messages=messages, tools=TOOLS, thinking=thinking
        ) as events:
            reply = await events.get_final_message()
    else:
        reply = await c.messages.create(
            model="claude", max_tokens=2048, messages=messages, tools=TOOLS, thinking=thinking
        )
    content = [block.model_dump(exclude_none=True) for block in reply.content]
    assert content == [THINKING, REDACTED, CALL]  # what the client got, signature and data intact
    messages += [
        {"role": "assistant", "content": content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_e2e", "content": "18C"}]},
    ]
    final = await c.messages.create(
        model="claude", max_tokens=2048, messages=messages, tools=TOOLS, thinking=thinking
    )
    assert final.content[0].type == "text"
    sent = upstreams.anthropic.requests[-1].json
    assert sent["messages"] == messages  # thinking, redacted thinking, cache_control: byte for byte
    assert sent["thinking"] == thinking
    assert sent["tools"] == TOOLS  # a tool definition's cache_control too


async def test_openai_clients_reasoning_effort_becomes_an_anthropic_thinking_budget(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    upstreams.anthropic.reply_json(message_body([THINKING, {"type": "text", "text": "Done."}]))
    c = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0, timeout=20)
    reply = await c.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "Think."}], reasoning_effort="low"
    )
    assert reply.choices[0].message.content == "Done."  # the thinking is not the answer
    sent = upstreams.anthropic.requests[-1].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert json.dumps(sent).count("reasoning_effort") == 0
