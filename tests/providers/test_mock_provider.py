"""The mock provider's structured answers: JSON mode, JSON schema and forced tool calls."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from llmrelay import Relay
from llmrelay.clock import FakeClock

HI = [{"role": "user", "content": "Hi there"}]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "days": {"type": "array", "items": {"$ref": "#/$defs/Day"}, "minItems": 2},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
    "$defs": {
        "Day": {
            "type": "object",
            "properties": {"high": {"type": "number", "minimum": 10}, "kind": {"enum": ["sun", "rain"]}},
            "required": ["high", "kind"],
        }
    },
}
JSON_SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "forecast", "schema": SCHEMA}}


def relay(text: str | None = None) -> Relay:
    options = {"text": text} if text is not None else {}
    models = [{"name": "demo", "targets": [{"provider": "mock", "options": options}]}]
    return Relay.from_config({"models": models}, clock=FakeClock())


@pytest.mark.parametrize("text", [None, "plain words, not JSON"])
async def test_json_object_mode_answers_a_json_object(text: str | None) -> None:
    async with relay(text) as r:
        reply = await r.chat("demo", HI, response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.text), dict)


async def test_json_object_mode_keeps_a_scripted_json_object() -> None:
    async with relay('{"answer": 42}') as r:
        reply = await r.chat("demo", HI, response_format={"type": "json_object"})
    assert json.loads(reply.text) == {"answer": 42}


@pytest.mark.parametrize("stream", [False, True])
async def test_json_schema_mode_answers_a_valid_instance(stream: bool) -> None:
    async with relay() as r:
        if stream:
            call = r.stream("demo", HI, response_format=JSON_SCHEMA_FORMAT)
            text = "".join([chunk.text async for chunk in call])
        else:
            text = (await r.chat("demo", HI, response_format=JSON_SCHEMA_FORMAT)).text
    jsonschema.validate(json.loads(text), SCHEMA)


async def test_forced_tool_call_arguments_follow_the_tool_schema() -> None:
    tool = {"type": "function", "function": {"name": "forecast", "parameters": SCHEMA}}
    choice = {"type": "function", "function": {"name": "forecast"}}
    async with relay() as r:
        reply = await r.chat("demo", HI, tools=[tool], tool_choice=choice)
    [call] = reply.tool_calls
    jsonschema.validate(json.loads(call.arguments), SCHEMA)
