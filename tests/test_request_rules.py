"""The canonical request's own consistency rules, and the SDK facade applying them."""

from __future__ import annotations

from typing import Any

import pytest

from llmrelay import InvalidRequest, Relay
from llmrelay.clock import FakeClock
from llmrelay.request_rules import validate
from llmrelay.types import ChatRequest, Tool, ToolChoice, text_message

HI = (text_message("user", "hi"),)
LOOKUP = Tool(name="lookup")


def request(**fields: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=HI, **fields)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"tool_choice": ToolChoice(mode="auto")},
        {"tool_choice": ToolChoice(mode="none")},
        {"tools": (LOOKUP,), "tool_choice": ToolChoice(mode="required")},
        {"tools": (LOOKUP,), "tool_choice": ToolChoice(mode="tool", name="lookup")},
        {"extensions": {"openai": {"n": 1}}},
        {"extensions": {"openai": {"n": None}}},
        {"extensions": {"anthropic": {"n": 3}}},  # not OpenAI's n: the Anthropic namespace has no such knob
    ],
)
def test_consistent_requests_pass_unchanged(fields: dict[str, Any]) -> None:
    req = request(**fields)
    assert validate(req) is req


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"tool_choice": ToolChoice(mode="required")}, "tool_choice", "no tools"),
        ({"tool_choice": ToolChoice(mode="tool", name="lookup")}, "tool_choice", "no tools"),
        (
            {"tools": (LOOKUP,), "tool_choice": ToolChoice(mode="tool", name="search")},
            "tool_choice",
            "'search', which is not in `tools` (lookup)",
        ),
        ({"extensions": {"openai": {"n": 2}}}, "n", "send n separate requests"),
        ({"extensions": {"openai": {"n": 0}}}, "n", "positive integer"),
        ({"extensions": {"openai": {"n": "2"}}}, "n", "positive integer"),
        ({"extensions": {"openai": {"n": True}}}, "n", "positive integer"),
    ],
)
def test_inconsistent_requests_are_a_400_naming_the_field(
    fields: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as bad:
        validate(request(**fields))
    assert bad.value.param == param
    assert bad.value.status == 400
    assert words in bad.value.message


async def test_the_sdk_facade_applies_the_rules_before_any_call() -> None:
    config = {"models": [{"name": "demo", "targets": [{"provider": "mock"}]}]}
    async with Relay.from_config(config, clock=FakeClock()) as relay:
        with pytest.raises(InvalidRequest) as bad:
            await relay.chat("demo", [{"role": "user", "content": "hi"}], tool_choice="required")
        assert bad.value.param == "tool_choice"
        with pytest.raises(InvalidRequest) as bad:
            relay.stream("demo", [{"role": "user", "content": "hi"}], extensions={"openai": {"n": 2}})
        assert bad.value.param == "n"


def test_tool_names_that_are_not_identifiers_are_not_echoed() -> None:
    """A name shaped like a function name helps the caller; anything else may be text put in the
    wrong field (a card number, a prompt) and stays out of the error."""
    odd = Tool(name="card 4111 1111 1111 1111", parameters={"type": "object"})
    with pytest.raises(InvalidRequest) as bad:
        validate(request(tools=(odd,), tool_choice=ToolChoice(mode="tool", name="jane@example.org x")))
    assert "4111" not in bad.value.message and "jane@" not in bad.value.message
    assert bad.value.param == "tool_choice"
