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
from tests.fakes.gemini_upstream import stream_events

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


def gemini_call(name: str, signature: str) -> dict[str, Any]:
    part = {"functionCall": {"name": name, "args": {"q": name}}, "thoughtSignature": signature}
    usage = {"promptTokenCount": 20, "candidatesTokenCount": 5, "thoughtsTokenCount": 7}
    candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-3-pro"}


async def openai_turn(gateway: Gateway, messages: list[Any], *, stream: bool) -> tuple[dict[str, Any], int]:
    """One turn through the OpenAI face: the assistant message to send back, and reasoning tokens."""
    c = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0, timeout=20)
    tools: Any = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in "ab"
    ]
    if not stream:
        reply = await c.chat.completions.create(model="gem", messages=messages, tools=tools)
        assert reply.usage is not None and reply.usage.completion_tokens_details is not None
        reasoning = reply.usage.completion_tokens_details.reasoning_tokens or 0
        return reply.choices[0].message.model_dump(exclude_none=True), reasoning
    calls: dict[int, dict[str, Any]] = {}
    reasoning = 0
    chunks = await c.chat.completions.create(
        model="gem", messages=messages, tools=tools, stream=True, stream_options={"include_usage": True}
    )
    async for chunk in chunks:
        if chunk.usage is not None and chunk.usage.completion_tokens_details is not None:
            reasoning = chunk.usage.completion_tokens_details.reasoning_tokens or 0
        for delta in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
            call = calls.setdefault(delta.index, {"type": "function", "function": {"arguments": ""}})
            assert delta.function is not None
            if delta.id:
                call["id"] = delta.id
            if delta.function.name:
                call["function"]["name"] = delta.function.name
            call["function"]["arguments"] += delta.function.arguments or ""
    return {"role": "assistant", "tool_calls": [calls[i] for i in sorted(calls)]}, reasoning


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_gemini_call_signatures_survive_an_openai_clients_conversation(
    gateway: Gateway, upstreams: Upstreams, stream: bool
) -> None:
    signatures = ["CvgBAVSoXO5VNrHf+/0Q==", "Ek8KAhgCEgx+Vm/ZS0s="]
    replies = [gemini_call("a", signatures[0]), gemini_call("b", signatures[1])]
    for reply in replies:
        upstreams.gemini.reply_stream(stream_events(reply)) if stream else upstreams.gemini.reply_json(reply)
    upstreams.gemini.reply_json(gemini_replies_text("Done."))
    messages: list[Any] = [{"role": "user", "content": "Go."}]
    for turn in range(3):
        if turn < 2:
            assistant, reasoning = await openai_turn(gateway, messages, stream=stream)
            assert reasoning == 7  # Gemini's thoughtsTokenCount, reported as reasoning tokens
            [call] = assistant["tool_calls"]
            messages += [assistant, {"role": "tool", "tool_call_id": call["id"], "content": "ok"}]
        else:
            c = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=APP_KEY, max_retries=0, timeout=20)
            final = await c.chat.completions.create(model="gem", messages=messages)
            assert final.choices[0].message.content == "Done."
        sent = upstreams.gemini.requests[-1].json["contents"]
        model_parts = [c["parts"] for c in sent if c["role"] == "model"]
        assert model_parts == [r["candidates"][0]["content"]["parts"] for r in replies[:turn]]
        responses = [
            p["functionResponse"]["name"] for c in sent for p in c["parts"] if "functionResponse" in p
        ]
        assert responses == ["a", "b"][:turn]


def gemini_replies_text(text: str) -> dict[str, Any]:
    candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
    return {"candidates": [candidate], "modelVersion": "gemini-3-pro"}


async def test_gemini_call_signatures_survive_an_anthropic_clients_conversation(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    upstreams.gemini.reply_json(gemini_call("lookup", "CvgBAVSoXO5VNrHf+/0Q=="))
    upstreams.gemini.reply_json(gemini_replies_text("Done."))
    c = client(gateway)
    messages: list[Any] = [{"role": "user", "content": "Go."}]
    reply = await c.messages.create(model="gem", max_tokens=100, messages=messages, tools=TOOLS)
    [block] = reply.content
    assert block.type == "tool_use"
    messages += [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "ok"}]},
    ]
    await c.messages.create(model="gem", max_tokens=100, messages=messages, tools=TOOLS)
    sent = upstreams.gemini.requests[-1].json["contents"]
    assert sent[1]["parts"] == [
        {
            "functionCall": {"name": "lookup", "args": {"q": "lookup"}},
            "thoughtSignature": "CvgBAVSoXO5VNrHf+/0Q==",
        }
    ]
