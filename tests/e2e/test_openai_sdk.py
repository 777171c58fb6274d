"""The official ``openai`` SDK against a running ``llmrelay serve`` with fake upstreams."""

from __future__ import annotations

import base64
import struct
from typing import Any

import openai
import pytest

from tests.e2e.conftest import APP_KEY, LIMITED_KEY, MASTER_KEY, PROVIDER_KEY, Upstreams
from tests.e2e.gateway import Gateway
from tests.fakes.openai_upstream import Reply, StreamReply

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELLO = [{"role": "user", "content": "Hello gateway"}]
TOOL: Any = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


def client(gateway: Gateway, key: str = APP_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=20)


@pytest.mark.parametrize("model", ["gpt", "claude", "gem", "mock"])
async def test_unary_chat_through_every_provider(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    reply = await client(gateway).chat.completions.create(model=model, messages=HELLO)  # type: ignore[arg-type]
    text = reply.choices[0].message.content
    assert text == ("mock says hi" if model == "mock" else "You said: Hello gateway")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0


async def test_the_provider_key_is_what_reaches_the_upstream(gateway: Gateway, upstreams: Upstreams) -> None:
    await client(gateway).chat.completions.create(model="gpt", messages=HELLO)  # type: ignore[arg-type]
    assert upstreams.openai.requests[-1].headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert upstreams.openai.requests[-1].json["model"] == "openai-model"


@pytest.mark.parametrize("model", ["gpt", "claude", "gem"])
async def test_streaming_with_and_without_usage(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    c = client(gateway)
    stream = await c.chat.completions.create(
        model=model,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = [chunk async for chunk in stream]
    assert len({chunk.id for chunk in chunks}) == 1
    assert (
        "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "You said: Hello gateway"
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0

    plain = await c.chat.completions.create(model=model, messages=HELLO, stream=True)  # type: ignore[arg-type]
    assert all(chunk.usage is None for chunk in [chunk async for chunk in plain])


@pytest.mark.parametrize("model", ["gpt", "claude", "gem"])
async def test_tools_unary_and_streamed(gateway: Gateway, upstreams: Upstreams, model: str) -> None:
    c = client(gateway)
    choice: Any = {"type": "function", "function": {"name": "lookup"}}
    reply = await c.chat.completions.create(model=model, messages=HELLO, tools=[TOOL], tool_choice=choice)  # type: ignore[arg-type]
    calls = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls"
    assert calls and calls[0].function.name == "lookup"  # type: ignore[union-attr]

    stream = await c.chat.completions.create(
        model=model,
        messages=HELLO,
        tools=[TOOL],
        tool_choice=choice,
        stream=True,  # type: ignore[arg-type]
    )
    names, finish = [], None
    async for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            if delta.function and delta.function.name:
                names.append(delta.function.name)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    assert names == ["lookup"] and finish == "tool_calls"


async def test_embeddings_float_and_base64(gateway: Gateway, upstreams: Upstreams) -> None:
    c = client(gateway)
    floats = await c.embeddings.create(model="embed", input=["a", "b"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    sdk_default = await c.embeddings.create(model="embed", input=["a", "b"])  # the SDK asks for base64
    assert sdk_default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    raw = await c.with_raw_response.embeddings.create(model="embed", input="a", encoding_format="base64")
    payload = raw.http_response.json()["data"][0]["embedding"]
    decoded = struct.unpack(f"<{len(base64.b64decode(payload)) // 4}f", base64.b64decode(payload))
    assert list(decoded) == pytest.approx(floats.data[0].embedding, rel=1e-6)


async def test_models_list_and_retrieve_respect_the_key(gateway: Gateway) -> None:
    ids = [m.id async for m in client(gateway).models.list()]
    assert ids == ["gpt", "claude", "gem", "embed", "mock"]
    assert [m.id async for m in client(gateway, LIMITED_KEY).models.list()] == ["mock"]
    assert (await client(gateway).models.retrieve("claude")).id == "claude"
    with pytest.raises(openai.NotFoundError):
        await client(gateway).models.retrieve("nope")


async def test_error_classes_the_sdk_maps(gateway: Gateway, upstreams: Upstreams) -> None:
    with pytest.raises(openai.AuthenticationError):
        await client(gateway, "sk-wrong").chat.completions.create(model="gpt", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        await client(gateway, LIMITED_KEY).chat.completions.create(model="gpt", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError) as missing:
        await client(gateway).chat.completions.create(model="gpt-9", messages=HELLO)  # type: ignore[arg-type]
    assert "Models this key may use: gpt, claude, gem, embed, mock" in str(missing.value)
    with pytest.raises(openai.BadRequestError) as bad:
        await client(gateway).chat.completions.create(model="gpt", messages=[{"role": "user"}])  # type: ignore[arg-type, list-item, misc]
    assert "messages" in str(bad.value)

    upstreams.openai.script(
        Reply(
            {"error": {"message": "slow down", "type": "rate_limit_error", "code": None}},
            429,
            {"retry-after": "7"},
        )
    )
    with pytest.raises(openai.RateLimitError) as limited:
        await client(gateway).chat.completions.create(model="gpt", messages=HELLO)  # type: ignore[arg-type]
    assert limited.value.response.headers["retry-after"] == "7"


async def test_mid_stream_failure_is_an_error_not_a_truncation(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    events = [
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": "partial"}, "finish_reason": None}
            ],
        },
    ] * 3
    upstreams.openai.script(StreamReply(events, drop_after=2))
    stream = await client(gateway).chat.completions.create(model="gpt", messages=HELLO, stream=True)  # type: ignore[arg-type]
    received = []
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            received.append(chunk)
    assert received  # the error came after the commit point


async def test_no_secret_in_logs(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        await client(gateway, "sk-wrong-but-secret-looking").chat.completions.create(
            model="mock", messages=HELLO
        )  # type: ignore[arg-type]
    log = gateway.log()
    for secret in (APP_KEY, LIMITED_KEY, MASTER_KEY, PROVIDER_KEY, "sk-wrong-but-secret-looking"):
        assert secret not in log
    lines = gateway.access_lines()
    assert lines and {"request_id", "key_id", "model", "status", "latency_ms"} <= lines[-1].keys()
