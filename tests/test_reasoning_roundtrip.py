"""A three-turn tool-use conversation with thinking keeps every signature byte for byte.

Through the SDK and a real provider over loopback HTTP (the fake upstreams speak Anthropic's and
Gemini's wire formats), unary and streamed: each turn's answer goes back in the next request as the
canonical message the caller received, and the fake records what arrived. Anthropic verifies
thinking signatures (and redacted-thinking data) when a tool-use turn continues, and Gemini 3
refuses function-call history without its ``thoughtSignature``, so one changed byte breaks the
conversation with the real providers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from llmrelay import ChatResponse, Message, Reasoning, ReasoningPart, Relay
from tests.fakes.anthropic_upstream import AnthropicUpstream, message_body, message_events
from tests.fakes.gemini_upstream import GeminiUpstream, stream_events
from tests.fakes.server import serve

TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "get_time")
]
# Base64 signatures with every character that an encoding step could disturb (+ / =).
SIG = ["EqQBCgIYAhIM1g+/bcDa9GJwZA2b3h==", "Ek8KAhgCEgx+Vm/ZS0sFSo3dYk=", "ErUBCkYIBBgCIk+/AAA="]


@dataclass
class Upstream:
    provider: str
    fake: Any
    replies: list[dict[str, Any]]
    """The three answers as the provider sends them (unary bodies)."""

    def script(self, turn: int, *, stream: bool) -> None:
        reply = self.replies[turn]
        if self.provider == "anthropic":
            if stream:
                self.fake.reply_stream(message_events(reply))
            else:
                self.fake.reply_json(reply)
        elif stream:
            self.fake.reply_stream(stream_events(reply))
        else:
            self.fake.reply_json(reply)

    def sent_history(self, turn: int) -> list[Any]:
        """The assistant turns of request ``turn`` as they went over the wire."""
        body = self.fake.requests[turn].json
        if self.provider == "anthropic":
            return [m["content"] for m in body["messages"] if m["role"] == "assistant"]
        return [c["parts"] for c in body["contents"] if c["role"] == "model"]

    def answer(self, turn: int) -> Any:
        """An answer's content exactly as the provider sent it."""
        reply = self.replies[turn]
        if self.provider == "anthropic":
            return reply["content"]
        return reply["candidates"][0]["content"]["parts"]


def anthropic_replies() -> list[dict[str, Any]]:
    call = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Oslo"}}
    second = {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {"tz": "Europe/Oslo"}}
    return [
        message_body(
            [
                {"type": "thinking", "thinking": "I need the weather first.", "signature": SIG[0]},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a=="},
                call,
            ],
            stop_reason="tool_use",
        ),
        message_body(
            [{"type": "thinking", "thinking": "Now the local time.", "signature": SIG[1]}, second],
            stop_reason="tool_use",
        ),
        message_body(
            [
                {"type": "thinking", "thinking": "Both known; answer.", "signature": SIG[2]},
                {"type": "text", "text": "Sunny, 18C, and it is noon."},
            ]
        ),
    ]


def gemini_replies() -> list[dict[str, Any]]:
    def reply(parts: list[dict[str, Any]]) -> dict[str, Any]:
        usage = {"promptTokenCount": 20, "candidatesTokenCount": 5, "thoughtsTokenCount": 7}
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-3-pro"}

    return [
        reply(
            [
                {"text": "I need the weather first.", "thought": True, "thoughtSignature": SIG[0]},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                    "thoughtSignature": SIG[1],
                },
            ]
        ),
        reply(
            [
                {
                    "functionCall": {"name": "get_time", "args": {"tz": "Europe/Oslo"}},
                    "thoughtSignature": SIG[2],
                }
            ]
        ),
        reply([{"text": "Sunny, 18C, and it is noon.", "thoughtSignature": "Cq8BAdHtim9+/x=="}]),
    ]


@pytest.fixture(params=["anthropic", "gemini"])
async def upstream(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Upstream, Relay]]:
    provider: str = request.param
    fake: Any = AnthropicUpstream() if provider == "anthropic" else GeminiUpstream()
    replies = anthropic_replies() if provider == "anthropic" else gemini_replies()
    async with serve(fake.app()) as url:
        target = {"provider": provider, "model": "thinker", "api_key": "k", "base_url": url}
        async with Relay.from_config({"models": [{"name": "smart", "targets": [target]}]}) as relay:
            yield Upstream(provider, fake, replies), relay


async def ask(relay: Relay, messages: list[Any], *, stream: bool) -> ChatResponse:
    options: dict[str, Any] = {"tools": TOOLS, "reasoning": Reasoning(effort="medium")}
    if not stream:
        return await relay.chat("smart", messages, **options)
    call = relay.stream("smart", messages, **options)
    async for _ in call:
        pass
    return call.final()


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_three_turn_tool_use_with_thinking_keeps_every_signature(
    upstream: tuple[Upstream, Relay], stream: bool
) -> None:
    up, relay = upstream
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Oslo?"}]
    answers: list[Message] = []
    for turn in range(3):
        up.script(turn, stream=stream)
        response = await ask(relay, messages, stream=stream)
        answers.append(response.message)
        # What the caller sees: the reasoning, with its signature, as the provider sent it.
        assert [p.signature for p in response.message.content if isinstance(p, ReasoningPart)][:1] == (
            [SIG[turn]] if up.provider == "anthropic" or turn == 0 else []
        )
        messages.append(response.message)
        for call in response.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"ok": turn})})
        # Every earlier answer went back in this request exactly as the provider sent it.
        assert up.sent_history(turn) == [up.answer(t) for t in range(turn)]
    assert answers[-1].text == "Sunny, 18C, and it is noon."
    first = up.fake.requests[0].json
    if up.provider == "anthropic":  # reasoning effort "medium" maps onto a thinking budget
        assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    else:
        assert first["generationConfig"]["thinkingConfig"] == {
            "thinkingBudget": 2048,
            "includeThoughts": True,
        }
    # The last answer's own signature is kept too, ready for a fourth turn.
    last = answers[-1].content
    if up.provider == "anthropic":
        assert next(p for p in last if isinstance(p, ReasoningPart)).signature == SIG[2]
    else:
        assert last[-1].provider_meta("gemini") == {"thoughtSignature": "Cq8BAdHtim9+/x=="}
