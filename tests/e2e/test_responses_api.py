"""The official ``openai`` SDK's Responses API against ``llmrelay serve``, every provider behind it.

Unary and streamed answers, tools and their outputs, ``previous_response_id`` conversations,
``GET``/``DELETE /v1/responses/{id}`` per key, and the errors; what the gateway emits is also
checked against OpenAI's published schema (:mod:`tests.openapi_spec`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest

from tests.e2e.conftest import APP_KEY, LIMITED_KEY, Upstreams
from tests.e2e.gateway import Gateway, run_gateway
from tests.fakes.anthropic_upstream import message_body, message_events
from tests.fakes.openai_upstream import StreamReply
from tests.openapi_spec import openai_spec_validator

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROVIDERS = ["gpt", "claude", "gem"]
TOOL: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Look something up",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    "strict": False,
}
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",  # one or more (runs of deltas are compared as one)
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def client(gateway: Gateway, key: str = APP_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=20)


def upstream_of(upstreams: Upstreams, model: str) -> Any:
    return {"gpt": upstreams.openai, "claude": upstreams.anthropic, "gem": upstreams.gemini}[model]


def sent_texts(upstreams: Upstreams, model: str) -> str:
    """Everything the last upstream request carried, as JSON text (what the provider was shown)."""
    return json.dumps(upstream_of(upstreams, model).requests[-1].json)


@pytest.mark.parametrize("model", [*PROVIDERS, "mock"])
async def test_unary_through_every_provider(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    raw = await client(gateway).responses.with_raw_response.create(model=model, input="Hello gateway")
    openai_spec_validator()("Response", raw.http_response.json())
    reply = raw.parse()
    assert reply.output_text == ("mock says hi" if model == "mock" else "You said: Hello gateway")
    assert reply.status == "completed" and reply.id.startswith("resp_")
    assert reply.usage is not None and reply.usage.output_tokens > 0
    assert reply.output[0].type == "message"


@pytest.mark.parametrize("model", PROVIDERS)
async def test_stream_events_in_openai_order(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    async with client(gateway).responses.stream(model=model, input="Hello gateway") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]] == TEXT_EVENTS
    assert kinds.count("response.output_text.delta") > 1  # streamed, not sent whole at the end
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (
        "".join(e.delta for e in events if e.type == "response.output_text.delta")
        == "You said: Hello gateway"
    )
    assert final.output_text == "You said: Hello gateway" and final.status == "completed"


@pytest.mark.parametrize("model", PROVIDERS)
async def test_tool_call_then_its_output_through_previous_response_id(
    gateway: Gateway, upstreams: Upstreams, model: str
) -> None:
    c = client(gateway)
    first = await c.responses.create(
        model=model,
        input="Find cats",
        tools=[TOOL],
        tool_choice={"type": "function", "name": "lookup"},
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "lookup"
    second = await c.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "42 cats"}],
        tools=[TOOL],
    )
    assert second.previous_response_id == first.id
    shown = sent_texts(upstreams, model)
    assert "Find cats" in shown and "42 cats" in shown and "lookup" in shown


@pytest.mark.parametrize("model", PROVIDERS)
async def test_streamed_tool_call(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    async with client(gateway).responses.stream(
        model=model, input="Find cats", tools=[TOOL], tool_choice={"type": "function", "name": "lookup"}
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.function_call_arguments.done" in kinds and kinds[-1] == "response.completed"
    call = final.output[-1]
    assert call.type == "function_call" and call.name == "lookup"
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == call.arguments  # type: ignore[union-attr]


@pytest.mark.parametrize("model", PROVIDERS)
async def test_raw_stream_events_fit_the_schema(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    body = {"model": model, "input": "Find cats", "stream": True, "tools": [TOOL]}
    events = await raw_events(gateway, body) + await raw_events(gateway, {**body, "tool_choice": "required"})
    validate = openai_spec_validator()
    for name, data in events:
        assert name == data["type"]
        validate("ResponseStreamEvent", data)
    assert {"response.output_text.delta", "response.function_call_arguments.done"} <= {n for n, _ in events}
    # The stored copy is, byte for byte, the response the last event carried.
    completed = events[-1][1]["response"]
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {APP_KEY}"}) as http,
        http.get(f"{gateway.url}/v1/responses/{completed['id']}") as reply,
    ):
        assert await reply.json() == completed


async def raw_events(gateway: Gateway, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """The SSE events of one streamed ``POST /v1/responses``, as sent (comments skipped)."""
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {APP_KEY}"}) as http,
        http.post(gateway.url + "/v1/responses", json=body) as reply,
    ):
        assert reply.status == 200
        text = await reply.text()
    events = []
    for frame in text.split("\n\n"):
        lines = [line for line in frame.splitlines() if line and not line.startswith(":")]
        if lines:
            assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
            events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


@pytest.mark.parametrize("model", PROVIDERS)
async def test_previous_response_id_carries_the_conversation(
    gateway: Gateway, upstreams: Upstreams, model: str
) -> None:
    c = client(gateway)
    first = await c.responses.create(model=model, input="My name is Ada", instructions="Be brief")
    async with c.responses.stream(model=model, input="What is my name?", previous_response_id=first.id) as s:
        second = await s.get_final_response()
    third = await c.responses.create(model=model, input="Thanks", previous_response_id=second.id)
    shown = sent_texts(upstreams, model)
    for turn in (
        "My name is Ada",
        "You said: My name is Ada",
        "What is my name?",
        "You said: What is my name?",
    ):
        assert turn in shown
    assert "Be brief" not in shown  # instructions are not carried over, as OpenAI's are not
    assert third.output_text == "You said: Thanks"


async def test_json_schema_output(gateway: Gateway, upstreams: Upstreams) -> None:
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}
    fmt: Any = {"format": {"type": "json_schema", "name": "echo", "schema": schema, "strict": True}}
    reply = await client(gateway).responses.create(model="claude", input="hi", text=fmt)
    assert json.loads(reply.output_text) == {"echo": "hi"}
    assert reply.text.format.type == "json_schema"  # type: ignore[union-attr]
    gpt = await client(gateway).responses.create(model="gpt", input="hi", text=fmt)
    assert upstreams.openai.requests[-1].json["response_format"]["json_schema"]["schema"] == schema
    assert gpt.status == "completed"


async def test_get_delete_and_other_keys(gateway: Gateway, upstreams: Upstreams) -> None:
    mine = client(gateway)
    reply = await mine.responses.create(model="mock", input="hello")
    assert (await mine.responses.retrieve(reply.id)).output_text == "mock says hi"
    other = client(gateway, LIMITED_KEY)
    with pytest.raises(openai.NotFoundError):
        await other.responses.retrieve(reply.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.delete(reply.id)
    with pytest.raises(openai.NotFoundError) as continued:
        await other.responses.create(model="mock", input="more", previous_response_id=reply.id)
    assert continued.value.body["param"] == "previous_response_id"  # type: ignore[index]
    await mine.responses.delete(reply.id)
    with pytest.raises(openai.NotFoundError):
        await mine.responses.retrieve(reply.id)
    with pytest.raises(openai.NotFoundError):
        await mine.responses.delete(reply.id)
    logged = [(line["route"], line["status"]) for line in gateway.access_lines()[-3:]]
    assert logged == [
        ("DELETE /v1/responses/{id}", 200),
        ("GET /v1/responses/{id}", 404),
        ("DELETE /v1/responses/{id}", 404),
    ]


async def test_store_false_keeps_nothing(gateway: Gateway) -> None:
    reply = await client(gateway).responses.create(model="mock", input="hello", store=False)
    assert reply.store is False
    with pytest.raises(openai.NotFoundError):
        await client(gateway).responses.retrieve(reply.id)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt"}, "input"),
        (
            {"model": "gpt", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0]",
        ),
        ({"model": "gpt", "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"model": "gpt", "input": "hi", "conversation": "c1"}, "conversation"),
        ({"model": "gpt", "input": "hi", "temperature": 3}, "temperature"),
        ({"model": "gpt", "input": []}, "input"),
    ],
)
async def test_bad_input_is_a_precise_400(gateway: Gateway, body: dict[str, Any], param: str) -> None:
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {APP_KEY}"}) as http,
        http.post(gateway.url + "/v1/responses", json=body) as reply,
    ):
        answer = await reply.json()
    assert reply.status == 400, answer
    error = answer["error"]
    assert error["param"].startswith(param) and error["type"] == "invalid_request_error"
    openai_spec_validator()("ErrorResponse", answer)


async def test_unknown_model_and_unknown_id(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError):
        await client(gateway).responses.create(model="nope", input="hi")
    with pytest.raises(openai.NotFoundError):
        await client(gateway).responses.retrieve("resp_" + "0" * 32)
    with pytest.raises(openai.NotFoundError):
        await client(gateway).responses.retrieve("../../etc")
    with pytest.raises(openai.AuthenticationError):
        await client(gateway, "sk-wrong").responses.retrieve("resp_" + "0" * 32)


async def test_failure_after_the_first_event_is_response_failed(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "partial"}, "finish_reason": None}
        ],
    }
    upstreams.openai.script(StreamReply([chunk] * 3, drop_after=2))
    kinds = []
    async with client(gateway).responses.stream(model="gpt", input="hi") as stream:
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.created":
                stream_id = event.response.id
    assert kinds[-1] == "response.failed" and "response.output_text.delta" in kinds
    assert "response.completed" not in kinds
    with pytest.raises(openai.NotFoundError):  # a failed answer is not a conversation to continue
        await client(gateway).responses.retrieve(stream_id)


async def test_a_stream_the_client_leaves_is_not_stored(gateway: Gateway, upstreams: Upstreams) -> None:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "partial"}, "finish_reason": None}
        ],
    }
    upstreams.openai.script(StreamReply([chunk], done=False, hang_after=True))
    body = {"model": "gpt", "input": "hi", "stream": True}
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {APP_KEY}"}) as http,
        http.post(gateway.url + "/v1/responses", json=body) as reply,
    ):
        async for line in reply.content:
            if line.startswith(b"data: ") and b"response.created" in line:
                response_id = json.loads(line[6:])["response"]["id"]
            if b"response.output_text.delta" in line:
                break  # and leave while the upstream is still generating
    await asyncio.wait_for(upstreams.openai.disconnected.wait(), 10)
    with pytest.raises(openai.NotFoundError):
        await client(gateway).responses.retrieve(response_id)


async def test_anthropic_thinking_survives_previous_response_id(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    """The Responses client never sees the thinking blocks; the stored conversation keeps them, so
    the next turn reaches Anthropic with every signature byte for byte, as its tool use requires."""
    thinking = {"type": "thinking", "thinking": "Look it up.", "signature": "EqQBCgIYAh+/IM1gbcDa9G=="}
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a=="}
    call = {"type": "tool_use", "id": "toolu_rsp", "name": "lookup", "input": {"q": "Oslo"}}
    first_body = message_body([thinking, redacted, call], stop_reason="tool_use")
    upstreams.anthropic.reply_stream(message_events(first_body))
    upstreams.anthropic.reply_json(message_body([{"type": "text", "text": "Sunny."}]))
    c = client(gateway)
    async with c.responses.stream(
        model="claude", input="Weather in Oslo?", tools=[TOOL], reasoning={"effort": "low"}
    ) as stream:
        first = await stream.get_final_response()
    calls = [item for item in first.output if item.type == "function_call"]
    assert [item.type for item in first.output] == ["function_call"] and calls[0].call_id == "toolu_rsp"
    second = await c.responses.create(
        model="claude",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "toolu_rsp", "output": "18C"}],
        tools=[TOOL],
        reasoning={"effort": "low"},
    )
    assert second.output_text == "Sunny."
    sent = upstreams.anthropic.requests[-1].json["messages"]
    assert sent[1] == {"role": "assistant", "content": [thinking, redacted, call]}
    assert sent[2]["content"][0]["tool_use_id"] == "toolu_rsp"


async def test_an_openai_target_on_the_responses_api_end_to_end(
    upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``options: {api: responses}``: both faces reach OpenAI's Responses API upstream."""
    target = {
        "provider": "openai",
        "model": "gpt-5-mini",
        "api_key": "sk-provider",
        "base_url": upstreams.urls["openai"] + "/v1",
        "options": {"api": "responses"},
    }
    config = {"models": [{"name": "gpt-r", "targets": [target], "retry": {"max_retries": 0}}]}
    async with run_gateway(config, tmp_path_factory.mktemp("gw-r")) as gw:
        c = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="any", max_retries=0, timeout=20)
        async with c.responses.stream(model="gpt-r", input="Hello gateway") as stream:
            first = await stream.get_final_response()
        assert first.output_text == "You said: Hello gateway"
        second = await c.responses.create(model="gpt-r", input="Again", previous_response_id=first.id)
        assert second.output_text == "You said: Again"
        sent = upstreams.openai.requests[-1]
        assert sent.path == "/v1/responses" and sent.json["store"] is False
        assert [item.get("role") for item in sent.json["input"]] == ["user", "assistant", "user"]
        chat = await c.chat.completions.create(model="gpt-r", messages=[{"role": "user", "content": "Hi"}])
        assert chat.choices[0].message.content == "You said: Hi"


async def test_concurrent_continuations_branch_the_conversation(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    c = client(gateway)
    root = await c.responses.create(model="mock", input="root")
    branches = await asyncio.gather(
        *(
            c.responses.create(model="mock", input=f"branch {i}", previous_response_id=root.id)
            for i in range(8)
        )
    )
    assert len({b.id for b in branches}) == 8 and all(b.previous_response_id == root.id for b in branches)
    # Each branch continues on its own: a follow-up of branch 3 is sent root, branch 3 and itself only.
    await c.responses.create(model="gpt", input="leaf", previous_response_id=branches[3].id)
    texts = [m["content"] for m in upstreams.openai.requests[-1].json["messages"]]
    assert texts == ["root", "mock says hi", "branch 3", "mock says hi", "leaf"]
