"""Thinking, redacted thinking and cache_control through the Anthropic codecs, both directions.

Anthropic verifies a thinking block's ``signature`` (and a redacted block's ``data``) when a
tool-use turn continues, so every path must hand them back byte for byte: unary and streamed
answers from the upstream, a client's history on ``/v1/messages``, and the server's own answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

from llmrelay.errors import InvalidRequest
from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Message,
    Reasoning,
    ReasoningDelta,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    text_message,
)
from llmrelay.wire.anthropic import decode_chat_response, encode_chat_request
from llmrelay.wire.anthropic_inbound import decode_messages_request, encode_messages_response
from llmrelay.wire.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from tests.fakes.anthropic_upstream import message_events

PAYLOADS = Path(__file__).parent / "payloads" / "anthropic"
CACHE = {"cache_control": {"type": "ephemeral"}}


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


async def streamed(events: list[tuple[str, dict[str, Any]]]) -> ChatResponse:
    decoder = AnthropicStreamDecoder()
    chunks = [c for name, data in events for c in decoder.feed(name, json.dumps(data))]
    decoder.finish()

    async def source() -> AsyncGenerator[ChatChunk, None]:
        for chunk in chunks:
            yield chunk

    stream = await ChatStream.open_chunks(source(), id="s", model="m", created=0)
    return await stream.collect()


def history(answer: Message) -> ChatRequest:
    """The next turn's request: the answer goes back, followed by the tool's result."""
    return ChatRequest(
        model="claude",
        messages=(
            text_message("user", "Weather in Paris?"),
            answer,
            Message(role="tool", content=(ToolResultPart(tool_call_id="toolu_01Think", content="18C"),)),
        ),
    )


def test_unary_thinking_blocks_decode_and_go_back_byte_for_byte() -> None:
    raw = payload("message_thinking_tool_use.json")
    response = decode_chat_response(json.dumps(raw).encode(), created=0)
    thinking, redacted, text, call = response.message.content
    assert thinking == ReasoningPart(
        text=raw["content"][0]["thinking"], signature=raw["content"][0]["signature"], provider="anthropic"
    )
    assert redacted == ReasoningPart(redacted=raw["content"][1]["data"], provider="anthropic")
    assert text == TextPart(text="Let me check the weather.")
    assert isinstance(call, ToolCallPart) and call.id == "toolu_01Think"
    assert response.text == "Let me check the weather."  # reasoning is not the answer's text
    assert response.usage == Usage(input_tokens=412 + 2048, output_tokens=180, cached_input_tokens=2048)
    sent = encode_chat_request(history(response.message), model="claude-sonnet-4-5")
    assert sent["messages"][1] == {"role": "assistant", "content": raw["content"]}


async def test_streamed_thinking_aggregates_to_a_message_that_goes_back_unchanged() -> None:
    events = [(e["event"], e["data"]) for e in payload("stream_redacted_thinking.json")]
    response = await streamed(events)
    redacted, thinking, call = response.message.content
    assert redacted == ReasoningPart(redacted=events[1][1]["content_block"]["data"], provider="anthropic")
    assert thinking == ReasoningPart(
        text="Check the weather.", signature="ErUBCkYIBBgCIkAv+/Q==", provider="anthropic"
    )
    assert isinstance(call, ToolCallPart) and json.loads(call.arguments) == {"location": "Paris"}
    assert response.usage.cached_input_tokens == 1024
    sent = encode_chat_request(history(response.message), model="claude-sonnet-4-5")
    assert sent["messages"][1]["content"][:2] == [
        {"type": "redacted_thinking", "data": events[1][1]["content_block"]["data"]},
        {"type": "thinking", "thinking": "Check the weather.", "signature": "ErUBCkYIBBgCIkAv+/Q=="},
    ]


async def test_recorded_thinking_stream_keeps_its_signature() -> None:
    events = [(e["event"], e["data"]) for e in payload("stream_thinking.json")]
    response = await streamed(events)
    assert response.message.content[0] == ReasoningPart(
        text="27 * 453 = 12231",
        signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        provider="anthropic",
    )
    assert response.text == "27 * 453 = 12,231"


def test_other_providers_reasoning_is_left_out() -> None:
    answer = Message(
        role="assistant",
        content=(ReasoningPart(text="hmm", signature="g-sig", provider="gemini"), TextPart(text="Hi")),
    )
    sent = encode_chat_request(ChatRequest(model="c", messages=(answer,)), model="claude")
    assert sent["messages"] == [{"role": "assistant", "content": "Hi"}]


def test_cache_control_is_written_on_every_block_and_system_becomes_blocks() -> None:
    meta = {"anthropic": CACHE}
    request = ChatRequest(
        model="c",
        messages=(
            text_message("system", "Plain."),
            Message(role="system", content=(TextPart(text="Long policy.", meta=meta),)),
            Message(role="user", content=(TextPart(text="Hi", meta=meta),)),
            Message(role="assistant", content=(ToolCallPart(id="t1", name="f", meta=meta),)),
            Message(role="tool", content=(ToolResultPart(tool_call_id="t1", content="ok", meta=meta),)),
            Message(role="user", content=(TextPart(text="Go on", meta={"gemini": {"x": 1}}),)),
        ),
    )
    sent = encode_chat_request(request, model="claude")
    assert sent["system"] == [
        {"type": "text", "text": "Plain."},
        {"type": "text", "text": "Long policy.", **CACHE},
    ]
    user, assistant, result, last = sent["messages"]
    assert user["content"] == [{"type": "text", "text": "Hi", **CACHE}]  # not the compact string form
    assert assistant["content"][0]["cache_control"] == CACHE["cache_control"]
    assert result["content"][0]["cache_control"] == CACHE["cache_control"]
    assert last == {"role": "user", "content": "Go on"}  # another provider's meta is not Anthropic's
    plain = encode_chat_request(ChatRequest(model="c", messages=request.messages[:1]), model="claude")
    assert plain["system"] == "Plain."


def test_reasoning_becomes_a_thinking_budget_inside_max_tokens() -> None:
    ask = ChatRequest(model="c", messages=(text_message("user", "Hi"),), reasoning=Reasoning(effort="high"))
    sent = encode_chat_request(ask, model="claude", default_max_tokens=4096)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent["max_tokens"] == 4096 + 4096  # the budget counts inside max_tokens
    capped = encode_chat_request(
        ChatRequest(model="c", messages=ask.messages, reasoning=Reasoning(effort="high"), max_tokens=3000),
        model="claude",
    )
    assert (capped["thinking"]["budget_tokens"], capped["max_tokens"]) == (2999, 3000)
    off = ChatRequest(model="c", messages=ask.messages, reasoning=Reasoning(effort="none"))
    assert "thinking" not in encode_chat_request(off, model="claude")


# -- the server's face -----------------------------------------------------------------------


def test_client_history_keeps_thinking_signatures_and_cache_control() -> None:
    raw = payload("message_thinking_tool_use.json")
    body = {
        "model": "claude",
        "max_tokens": 2000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?", **CACHE}]},
            {"role": "assistant", "content": raw["content"]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_01Think", "content": "18C"}],
            },
        ],
    }
    request = decode_messages_request(json.dumps(body).encode())
    assert request.reasoning == Reasoning(budget_tokens=1024)
    assert request.extensions == {}
    sent = encode_chat_request(request, model="claude-sonnet-4-5")
    assert sent["messages"] == body["messages"]
    assert sent["thinking"] == body["thinking"]


def test_thinking_in_a_user_message_is_a_precise_400() -> None:
    body = {
        "model": "claude",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]}],
    }
    with pytest.raises(InvalidRequest) as info:
        decode_messages_request(json.dumps(body).encode())
    assert info.value.param == "messages[0].content[0].type"


def test_server_answers_carry_thinking_blocks_unary_and_streamed() -> None:
    raw = payload("message_thinking_tool_use.json")
    response = decode_chat_response(json.dumps(raw).encode(), created=0)
    assert encode_messages_response(response)["content"] == raw["content"]
    encoder = AnthropicStreamEncoder(id="msg_1", model="claude")
    decoder = AnthropicStreamDecoder()
    upstream = message_events(raw)
    chunks = [c for name, data in upstream for c in decoder.feed(name, json.dumps(data))]
    events = [e for c in chunks for e in encoder.feed(c)] + encoder.finish()
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert starts[1] == raw["content"][1]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert {"type": "signature_delta", "signature": raw["content"][0]["signature"]} in deltas
    thinking = "".join(d.get("thinking", "") for d in deltas if d["type"] == "thinking_delta")
    assert thinking == raw["content"][0]["thinking"]


def test_stream_encoder_leaves_out_other_providers_reasoning() -> None:
    encoder = AnthropicStreamEncoder(id="msg_1", model="claude")
    chunk = ChatChunk(
        reasoning=(ReasoningDelta(index=0, text="g", signature="s", provider="gemini"),), text="Hi"
    )
    events = encoder.feed(chunk) + encoder.finish()
    starts = [data["content_block"]["type"] for name, data in events if name == "content_block_start"]
    assert starts == ["text"]
