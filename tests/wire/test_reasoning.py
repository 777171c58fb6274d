"""The effort <-> budget tables, and what each codec sends for one canonical ``reasoning``."""

from __future__ import annotations

import json

import pytest

from llmrelay.errors import InvalidRequest
from llmrelay.types import ChatRequest, Reasoning, text_message
from llmrelay.wire import anthropic, gemini, openai
from llmrelay.wire.anthropic_inbound import decode_messages_request
from llmrelay.wire.openai_inbound import decode_chat_request
from llmrelay.wire.reasoning import anthropic_thinking, budget, decode_anthropic_thinking, effort


@pytest.mark.parametrize(
    ("reasoning", "tokens", "level"),
    [
        (Reasoning(effort="none"), 0, "none"),
        (Reasoning(effort="minimal"), 1024, "minimal"),
        (Reasoning(effort="low"), 1024, "low"),
        (Reasoning(effort="medium"), 2048, "medium"),
        (Reasoning(effort="high"), 4096, "high"),
        (Reasoning(budget_tokens=0), 0, "none"),
        (Reasoning(budget_tokens=1500), 1500, "medium"),
        (Reasoning(budget_tokens=32000), 32000, "high"),
        (Reasoning(effort="low", budget_tokens=9000), 9000, "high"),  # the budget wins
    ],
)
def test_effort_and_budget_tables(reasoning: Reasoning, tokens: int, level: str) -> None:
    assert (budget(reasoning), effort(reasoning)) == (tokens, level)


def test_anthropic_needs_room_above_its_smallest_budget() -> None:
    with pytest.raises(InvalidRequest) as info:
        anthropic_thinking(Reasoning(effort="low"), max_tokens=1000, default_max_tokens=4096)
    assert info.value.param == "max_tokens"


@pytest.mark.parametrize(
    "value",
    [
        {"type": "disabled"},
        {"type": "adaptive"},
        {"type": "enabled", "budget_tokens": "x"},
        {"type": "enabled"},
    ],
)
def test_other_thinking_shapes_stay_anthropic_parameters(value: object) -> None:
    assert decode_anthropic_thinking(value) is None
    body = {
        "model": "c",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
        "thinking": value,
    }
    request = decode_messages_request(json.dumps(body).encode())
    assert request.reasoning is None and request.extension("anthropic") == {"thinking": value}


def test_an_openai_clients_effort_reaches_every_provider() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "high"}
    request = decode_chat_request(json.dumps(body).encode())
    assert request.reasoning == Reasoning(effort="high") and request.extensions == {}
    assert openai.encode_chat_request(request, model="o4")["reasoning_effort"] == "high"
    assert anthropic.encode_chat_request(request, model="c")["thinking"] == {
        "type": "enabled",
        "budget_tokens": 4096,
    }
    config = gemini.encode_chat_request(request)["generationConfig"]["thinkingConfig"]
    assert config == {"thinkingBudget": 4096, "includeThoughts": True}


def test_an_unknown_effort_stays_an_openai_parameter() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "extreme"}
    request = decode_chat_request(json.dumps(body).encode())
    assert request.reasoning is None and request.extension("openai") == {"reasoning_effort": "extreme"}


def test_an_anthropic_clients_budget_reaches_openai_as_an_effort() -> None:
    request = ChatRequest(
        model="m", messages=(text_message("user", "Hi"),), reasoning=Reasoning(budget_tokens=2000)
    )
    assert openai.encode_chat_request(request, model="o4")["reasoning_effort"] == "medium"
