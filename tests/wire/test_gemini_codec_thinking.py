"""Gemini thoughts and thought signatures through the codec, both directions, on recorded payloads.

Gemini 3 refuses function-call history whose ``thoughtSignature`` is missing, and asks for every
signature back on the part it came on; so decoding keeps each one where it was (a reasoning part,
a function call's or a text part's ``meta``) and encoding writes it back there unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Message,
    Reasoning,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
    text_message,
)
from llmrelay.wire.gemini import GeminiStreamDecoder, decode_chat_response, encode_chat_request

PAYLOADS = Path(__file__).parent / "payloads" / "gemini"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def next_turn(answer: Message) -> dict[str, Any]:
    """The body of the request that sends ``answer`` back with its tool results."""
    results = tuple(
        Message(role="tool", content=(ToolResultPart(tool_call_id=call.id, content='{"temp": 18}'),))
        for call in answer.tool_calls
    )
    request = ChatRequest(model="g", messages=(text_message("user", "Weather in Paris?"), answer, *results))
    return encode_chat_request(request)


async def streamed(events: list[dict[str, Any]]) -> ChatResponse:
    decoder = GeminiStreamDecoder(model="gemini-target")
    chunks = [c for event in events for c in decoder.feed(json.dumps(event))] + decoder.end()

    async def source() -> AsyncGenerator[ChatChunk, None]:
        for chunk in chunks:
            yield chunk

    stream = await ChatStream.open_chunks(source(), id="s", model="m", created=0)
    return await stream.collect()


def test_unary_signatures_stay_on_their_parts_and_go_back_unchanged() -> None:
    raw = payload("generate_thought_signatures.json")
    parts = raw["candidates"][0]["content"]["parts"]
    response = decode_chat_response(json.dumps(raw), model="g")
    thought, call = response.message.content
    assert thought == ReasoningPart(
        text=parts[0]["text"], signature=parts[0]["thoughtSignature"], provider="gemini"
    )
    assert isinstance(call, ToolCallPart) and call.name == "get_weather"
    assert call.provider_meta("gemini") == {"thoughtSignature": parts[1]["thoughtSignature"]}
    assert response.text == ""  # a thought is not the answer
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(
        input_tokens=96, output_tokens=18 + 175, cached_input_tokens=64, reasoning_tokens=175
    )
    body = next_turn(response.message)
    assert body["contents"][1] == {"role": "model", "parts": parts}


async def test_streamed_thoughts_and_a_trailing_signed_empty_part_aggregate_and_go_back() -> None:
    events = payload("stream_thought_signatures.json")
    response = await streamed(events)
    thought, text = response.message.content
    assert thought == ReasoningPart(
        text="**Answering**\n\nThe user wants a greeting.", signature="Ck0BVKhc7hX+/pQ==", provider="gemini"
    )
    assert text == TextPart(
        text="Hello there!", meta={"gemini": {"thoughtSignature": "EuoBCucBAdHtim+/9w=="}}
    )
    assert response.usage.cached_input_tokens == 8 and response.usage.reasoning_tokens == 48
    body = next_turn(response.message)
    assert body["contents"][1]["parts"] == [
        {
            "text": "**Answering**\n\nThe user wants a greeting.",
            "thought": True,
            "thoughtSignature": "Ck0BVKhc7hX+/pQ==",
        },
        {"text": "Hello there!", "thoughtSignature": "EuoBCucBAdHtim+/9w=="},
    ]


def test_signed_thoughts_in_a_stream_start_a_new_reasoning_part() -> None:
    def event(text: str, signature: str | None, finish: str | None = None) -> dict[str, Any]:
        part: dict[str, Any] = {"text": text, "thought": True}
        if signature:
            part["thoughtSignature"] = signature
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate]}

    decoder = GeminiStreamDecoder(model="g")
    chunks = [
        c
        for e in (event("a", "s1"), event("b", None), event("c", "s2", "STOP"))
        for c in decoder.feed(json.dumps(e))
    ]
    indices = [(r.index, r.text, r.signature) for c in chunks for r in c.reasoning]
    assert indices == [(0, "a", "s1"), (1, "b", None), (1, "c", "s2")]


def test_other_providers_reasoning_and_meta_are_left_out() -> None:
    answer = Message(
        role="assistant",
        content=(
            ReasoningPart(text="x", signature="anthropic-sig", provider="anthropic"),
            TextPart(text="Hi", meta={"anthropic": {"cache_control": {"type": "ephemeral"}}}),
        ),
    )
    body = encode_chat_request(ChatRequest(model="g", messages=(answer,)))
    assert body["contents"] == [{"role": "model", "parts": [{"text": "Hi"}]}]


def test_reasoning_becomes_thinking_config_and_an_explicit_one_wins() -> None:
    messages = (text_message("user", "Hi"),)
    low = encode_chat_request(ChatRequest(model="g", messages=messages, reasoning=Reasoning(effort="low")))
    assert low["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    off = encode_chat_request(ChatRequest(model="g", messages=messages, reasoning=Reasoning(effort="none")))
    assert off["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    explicit = ChatRequest(
        model="g",
        messages=messages,
        reasoning=Reasoning(budget_tokens=500),
        extensions={"gemini": {"thinkingConfig": {"thinkingLevel": "high"}}},
    )
    assert encode_chat_request(explicit)["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high"}
