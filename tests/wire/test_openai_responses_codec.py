"""The Responses API codec: request decoding, the Response object, and the typed stream events.

The recorded streams (``payloads/openai/responses_stream_*.json``) follow OpenAI's Responses
streaming reference event by event (a text answer; a function call); the encoder must emit the same
events in the same order with the same fields, apart from ``obfuscation`` (OpenAI's padding) and
the ``name`` that the current spec requires on ``response.function_call_arguments.done``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from llmrelay.errors import InvalidRequest, RateLimited, StreamInterrupted
from llmrelay.types import (
    ChatChunk,
    ChatResponse,
    ImagePart,
    Message,
    Reasoning,
    ReasoningPart,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    text_message,
)
from llmrelay.wire.call_ids import with_signature
from llmrelay.wire.openai_responses import decode_responses_request, with_history
from llmrelay.wire.openai_responses_output import encode_response
from llmrelay.wire.openai_responses_stream import ResponsesStreamEncoder
from tests.openapi_spec import Validate, openai_spec_validator

PAYLOADS = Path(__file__).parent / "payloads" / "openai"
RID = "resp_" + "ab" * 16


def decode(**body: Any) -> Any:
    return decode_responses_request(msgspec.json.encode({"model": "fast", **body}))


@pytest.fixture(scope="module")
def validate() -> Validate:
    return openai_spec_validator()


def test_string_input_and_instructions() -> None:
    call = decode(input="Hi", instructions="Be brief", max_output_tokens=50, temperature=0.2)
    assert call.request.messages == (text_message("system", "Be brief"), text_message("user", "Hi"))
    assert call.input == (text_message("user", "Hi"),)
    assert call.request.max_tokens == 50 and call.request.temperature == 0.2
    assert call.store is True and call.previous_response_id is None
    assert call.echo["instructions"] == "Be brief" and call.echo["temperature"] == 0.2


def test_items_become_canonical_turns() -> None:
    signed = with_signature("call_1", {"gemini": {"thoughtSignature": "sig=="}})
    call = decode(
        input=[
            {"role": "developer", "content": "Rules"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Look"}]},
            {
                "role": "user",
                "content": [{"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "Calling", "annotations": []}]},
            {"type": "function_call", "call_id": signed, "name": "find", "arguments": '{"q":1}'},
            {"type": "function_call", "call_id": "call_2", "name": "other", "arguments": "{}", "id": "fc_9"},
            {"type": "function_call_output", "call_id": signed, "output": "found"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "ok"}],
            },
        ],
        store=False,
    )
    system, user, image, assistant, first, second = call.request.messages
    assert system == text_message("system", "Rules") and user == text_message("user", "Look")
    assert image.content == (ImagePart(url="https://x/y.png", detail="low"),)
    # Both calls join the assistant turn before them; the signature comes off the id into meta.
    assert assistant.content == (
        TextPart(text="Calling"),
        ToolCallPart(
            id="call_1", name="find", arguments='{"q":1}', meta={"gemini": {"thoughtSignature": "sig=="}}
        ),
        ToolCallPart(id="call_2", name="other", arguments="{}"),
    )
    assert first.content == (ToolResultPart(tool_call_id="call_1", content="found", name="find"),)
    assert second.content == (ToolResultPart(tool_call_id="call_2", content="ok", name="other"),)
    assert call.store is False


def test_tools_choice_format_and_reasoning() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    call = decode(
        input="x",
        tools=[{"type": "function", "name": "f", "parameters": schema, "strict": True}],
        tool_choice={"type": "function", "name": "f"},
        text={"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}},
        reasoning={"effort": "low"},
        parallel_tool_calls=False,
        include=["reasoning.encrypted_content"],  # accepted: tunes OpenAI's own service only
    )
    request = call.request
    assert request.tools[0].name == "f" and request.tools[0].parameters == schema
    assert request.tool_choice is not None and request.tool_choice.name == "f"
    assert request.response_format is not None and request.response_format.json_schema == schema
    assert request.reasoning == Reasoning(effort="low") and request.parallel_tool_calls is False
    assert call.echo["tool_choice"] == {"type": "function", "name": "f"}
    assert (
        decode(input="x", text={"format": {"type": "json_object"}}).request.response_format.type
        == "json_object"
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f1"}]}]},
            "input[0].content[0]",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": "x", "tool_choice": {"type": "function", "name": "missing"}}, "tool_choice"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({}, "input"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        decode(**body)
    assert err.value.param is not None and err.value.param.startswith(param), err.value.message


def test_history_goes_between_instructions_and_input() -> None:
    call = decode(input="Again", instructions="Now terse", previous_response_id=RID)
    history = (
        text_message("user", "Hi"),
        Message(role="assistant", content=(ReasoningPart(text="t", signature="s", provider="anthropic"),)),
    )
    request = with_history(call, history)
    assert request.messages == (text_message("system", "Now terse"), *history, text_message("user", "Again"))
    # A tool result answering a call from the stored turns is named after it (Gemini needs the name).
    answer_call = decode(input=[{"type": "function_call_output", "call_id": "c9", "output": "18C"}])
    earlier = (Message(role="assistant", content=(ToolCallPart(id="c9", name="weather"),)),)
    linked = with_history(answer_call, earlier).messages[-1].content[0]
    assert linked == ToolResultPart(tool_call_id="c9", content="18C", name="weather")


def answer(message: Message, finish: Any = "stop") -> ChatResponse:
    return ChatResponse(
        id="up-1",
        model="gpt-4o-mini",
        created=1,
        message=message,
        finish_reason=finish,
        usage=Usage(input_tokens=5, output_tokens=3, cached_input_tokens=1, reasoning_tokens=1),
    )


def test_response_objects_fit_the_schema(validate: Validate) -> None:
    echo = decode(input="x", tools=[{"type": "function", "name": "f"}], user="u1", metadata={"k": "v"}).echo
    text = encode_response(
        answer(text_message("assistant", "Hi")), echo, id=RID, created_at=10, completed_at=11
    )
    validate("Response", text)
    assert text["output"][0]["content"][0]["text"] == "Hi" and text["usage"]["total_tokens"] == 8
    call = ToolCallPart(id="c1", name="f", arguments="{}", meta={"gemini": {"thoughtSignature": "zz"}})
    calls = encode_response(
        answer(Message(role="assistant", content=(call,)), "tool_calls"),
        echo,
        id=RID,
        created_at=1,
        completed_at=2,
    )
    validate("Response", calls)
    assert [i["type"] for i in calls["output"]] == ["function_call"]
    assert calls["output"][0]["call_id"] == with_signature("c1", call.meta)
    cut = encode_response(
        answer(text_message("assistant", "Hal"), "length"), echo, id=RID, created_at=1, completed_at=2
    )
    validate("Response", cut)
    assert cut["status"] == "incomplete" and cut["incomplete_details"] == {"reason": "max_output_tokens"}
    assert cut["completed_at"] is None


def events_of(
    encoder: ResponsesStreamEncoder, chunks: list[ChatChunk], final: ChatResponse
) -> list[dict[str, Any]]:
    out = [data for chunk in chunks for _, data in encoder.feed(chunk)]
    body = encode_response(final, encoder._echo, id=RID, created_at=1, completed_at=2)
    return out + [data for _, data in encoder.finish(body)]


def same_shape(mine: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> None:
    assert [e["type"] for e in mine] == [e["type"] for e in recorded]
    for ours, theirs in zip(mine, recorded, strict=True):
        expected = set(theirs) - {"obfuscation"}
        extra = set(ours) - expected
        assert extra <= {"name"}, (ours["type"], extra)
        assert expected <= set(ours), (ours["type"], expected - set(ours))
        for key in ("item", "part"):
            if key in theirs:
                assert set(ours[key]) == set(theirs[key]), (ours["type"], key)
        for key in ("delta", "text", "arguments", "output_index", "content_index", "sequence_number"):
            if key in theirs:
                assert ours[key] == theirs[key], (ours["type"], key)


def test_text_stream_matches_the_recorded_openai_events(validate: Validate) -> None:
    recorded = json.loads((PAYLOADS / "responses_stream_text.json").read_text())
    deltas = [e["delta"] for e in recorded if e["type"] == "response.output_text.delta"]
    encoder = ResponsesStreamEncoder(decode(input="x").echo, id=RID, model="gpt-4o-mini", created_at=1)
    chunks = [ChatChunk(text=d) for d in deltas] + [
        ChatChunk(finish_reason="stop", usage=Usage(output_tokens=6))
    ]
    mine = events_of(encoder, chunks, answer(text_message("assistant", "".join(deltas))))
    same_shape(mine, recorded)
    for event in mine:
        validate("ResponseStreamEvent", event)
    assert mine[-1]["response"]["output"][0]["id"] == mine[2]["item"]["id"]


def test_function_call_stream_matches_the_recorded_openai_events(validate: Validate) -> None:
    recorded = json.loads((PAYLOADS / "responses_stream_function_call.json").read_text())
    pieces = [e["delta"] for e in recorded if e["type"] == "response.function_call_arguments.delta"]
    added = recorded[2]["item"]
    echo = decode(input="x", tools=[{"type": "function", "name": "get_weather"}]).echo
    encoder = ResponsesStreamEncoder(echo, id=RID, model="gpt-4o-mini", created_at=1)
    chunks = [ChatChunk(tool_calls=(ToolCallDelta(index=0, id=added["call_id"], name="get_weather"),))]
    chunks += [ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments=p),)) for p in pieces]
    chunks.append(ChatChunk(finish_reason="tool_calls"))
    call = ToolCallPart(id=added["call_id"], name="get_weather", arguments="".join(pieces))
    mine = events_of(encoder, chunks, answer(Message(role="assistant", content=(call,)), "tool_calls"))
    same_shape(mine, recorded)
    for event in mine:
        validate("ResponseStreamEvent", event)
    assert mine[-1]["response"]["output"][0]["id"] == mine[2]["item"]["id"]


def test_text_then_two_calls_close_each_item_before_the_next(validate: Validate) -> None:
    encoder = ResponsesStreamEncoder(decode(input="x").echo, id=RID, model="m", created_at=1)
    chunks = [
        ChatChunk(text="Let me look."),
        ChatChunk(tool_calls=(ToolCallDelta(index=1, id="a", name="f", arguments='{"x":'),)),
        ChatChunk(tool_calls=(ToolCallDelta(index=1, arguments="1}"),)),
        ChatChunk(tool_calls=(ToolCallDelta(index=2, id="b", name="g", arguments="{}"),)),
        ChatChunk(finish_reason="tool_calls"),
    ]
    calls = (
        ToolCallPart(id="a", name="f", arguments='{"x":1}'),
        ToolCallPart(id="b", name="g", arguments="{}"),
    )
    final = answer(Message(role="assistant", content=(TextPart(text="Let me look."), *calls)), "tool_calls")
    mine = events_of(encoder, chunks, final)
    for event in mine:
        validate("ResponseStreamEvent", event)
    opened = [e["output_index"] for e in mine if e["type"] == "response.output_item.added"]
    closed = [e["output_index"] for e in mine if e["type"] == "response.output_item.done"]
    assert opened == closed == [0, 1, 2]
    # Each item is done before the next is added.
    kinds = [(e["type"], e.get("output_index")) for e in mine]
    assert kinds.index(("response.output_item.done", 0)) < kinds.index(("response.output_item.added", 1))
    done_items = [e["item"] for e in mine if e["type"] == "response.output_item.done"]
    assert done_items == mine[-1]["response"]["output"]


def test_empty_answer_is_one_empty_message_and_failure_is_response_failed(validate: Validate) -> None:
    encoder = ResponsesStreamEncoder(decode(input="x").echo, id=RID, model="m", created_at=1)
    mine = events_of(encoder, [ChatChunk(finish_reason="stop")], answer(Message(role="assistant")))
    assert mine[-1]["response"]["output"][0]["content"][0]["text"] == ""
    for event in mine:
        validate("ResponseStreamEvent", event)
    failing = ResponsesStreamEncoder(decode(input="x").echo, id=RID, model="m", created_at=1)
    events = failing.feed(ChatChunk(text="part")) + failing.fail(StreamInterrupted("upstream went away"))
    assert events[-1][0] == "response.failed"
    assert events[-1][1]["response"]["error"] == {"code": "server_error", "message": "upstream went away"}
    assert failing.fail(RateLimited("slow"))[-1][1]["response"]["error"]["code"] == "rate_limit_exceeded"
    for _, data in events:
        validate("ResponseStreamEvent", data)
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
