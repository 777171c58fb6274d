"""validate_output: JSON answers checked, re-asked with the error, then ``invalid_output``; streams
checked at their end (an error instead of the terminator) or buffered and re-asked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import pytest

from llmrelay.classify import classify
from llmrelay.clock import FakeClock
from llmrelay.context import Context
from llmrelay.errors import InvalidOutput, InvalidRequest
from llmrelay.json_schemas import SchemaCache
from llmrelay.policies.validate_output import OutputValidation, ValidateOutput
from llmrelay.service import Request, Result
from llmrelay.streams import Batch, ChatStream
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Message,
    ResponseFormat,
    TextPart,
    ToolCallPart,
)

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
AS_SCHEMA = ResponseFormat(type="json_schema", name="n", json_schema=SCHEMA)


def ask(fmt: ResponseFormat | None = AS_SCHEMA, *, stream: bool = False) -> ChatRequest:
    messages = (Message(role="user", content=(TextPart(text="give n"),)),)
    return ChatRequest(model="m", messages=messages, response_format=fmt, stream=stream)


def response(text: str, *, tool: bool = False) -> ChatResponse:
    parts = (ToolCallPart(id="c", name="f", arguments="{}"),) if tool else (TextPart(text=text),)
    return ChatResponse(id="r", model="m", created=0, message=Message(role="assistant", content=parts))


async def batches(chunks: Sequence[ChatChunk]) -> AsyncIterator[Batch]:
    for chunk in chunks:
        yield (chunk,)


class Upstream:
    """A fake ``call_next`` answering the scripted texts in turn (streamed when asked)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    async def __call__(self, request: Request, ctx: Context) -> Result:
        assert isinstance(request, ChatRequest)
        self.requests.append(request)
        text = self.answers.pop(0)
        if not request.stream:
            return response(text)
        half = len(text) // 2
        chunks = [ChatChunk(text=text[:half]), ChatChunk(text=text[half:]), ChatChunk(finish_reason="stop")]
        return await ChatStream.open(batches(chunks), id="s", model="m", created=0)


def policy(**config: object) -> ValidateOutput:
    return ValidateOutput(OutputValidation(**config), SchemaCache(), label="t")  # type: ignore[arg-type]


CTX = Context(clock=FakeClock())


async def test_a_valid_answer_passes_with_one_call_and_text_requests_are_not_checked() -> None:
    upstream = Upstream('{"n": 1}', "plain prose")
    result = await policy()(ask(), CTX, upstream)
    assert isinstance(result, ChatResponse) and result.text == '{"n": 1}'
    assert isinstance(await policy()(ask(None), CTX, upstream), ChatResponse)
    assert len(upstream.requests) == 2


async def test_an_invalid_answer_is_reasked_with_the_error_then_accepted() -> None:
    upstream = Upstream('{"n": "one"}', '{"n": 1}')
    result = await policy(max_retries=1)(ask(), CTX, upstream)
    assert isinstance(result, ChatResponse) and result.text == '{"n": 1}'
    again = upstream.requests[1].messages
    assert [m.role for m in again] == ["user", "assistant", "user"]
    assert again[1].text == '{"n": "one"}'
    assert 'at /n: "one" is not of type "integer"' in again[2].text


async def test_still_invalid_after_the_retries_is_invalid_output_that_fails_over() -> None:
    upstream = Upstream("not json", "{also not", "[1]")
    with pytest.raises(InvalidOutput) as info:
        await policy(max_retries=2)(ask(ResponseFormat(type="json_object")), CTX, upstream)
    assert len(upstream.requests) == 3
    assert info.value.status == 502 and info.value.code == "invalid_output"
    assert "after 3 attempts: valid JSON, but not an object" in info.value.message
    assert classify(info.value) == (False, True, False)  # retry, failover, breaker


async def test_shadow_mode_logs_without_the_answer_and_returns_it(caplog: pytest.LogCaptureFixture) -> None:
    upstream = Upstream('{"secret-ish": true}')
    with caplog.at_level(logging.INFO, "llmrelay.validate_output"):
        result = await policy(enforce=False)(ask(), CTX, upstream)
    assert isinstance(result, ChatResponse) and len(upstream.requests) == 1
    assert "shadow: invalid output from t" in caplog.text and "secret-ish" not in caplog.text


async def test_tool_calls_are_not_checked_and_a_bad_schema_is_the_callers_400() -> None:
    async def tool_call(request: Request, ctx: Context) -> Result:
        return response("", tool=True)

    assert isinstance(await policy()(ask(), CTX, tool_call), ChatResponse)
    bad = ResponseFormat(type="json_schema", name="x", json_schema={"type": "objekt"})
    with pytest.raises(InvalidRequest) as info:
        await policy()(ask(bad), CTX, tool_call)
    assert info.value.param == "response_format" and "not a valid JSON schema" in info.value.message


async def test_a_stream_is_checked_at_its_end_and_fails_there_instead_of_ending() -> None:
    result = await policy()(ask(stream=True), CTX, Upstream('{"n": "x"}'))
    assert isinstance(result, ChatStream)
    seen = []
    with pytest.raises(InvalidOutput, match="streamed answer from t is not the JSON"):
        async for chunk in result:
            seen.append(chunk.text)
    assert "".join(seen) == '{"n": "x"}'  # every chunk was delivered first
    assert not result.done

    good = await policy()(ask(stream=True), CTX, Upstream('{"n": 2}'))
    assert isinstance(good, ChatStream)
    assert (await good.collect()).text == '{"n": 2}'


async def test_buffered_streams_are_reasked_and_replayed_whole() -> None:
    upstream = Upstream('{"n": "x"}', '{"n": 3}')
    result = await policy(buffer_streams=True)(ask(stream=True), CTX, upstream)
    assert isinstance(result, ChatStream)
    assert (await result.collect()).text == '{"n": 3}'
    assert len(upstream.requests) == 2 and all(r.stream for r in upstream.requests)
