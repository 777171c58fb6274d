"""The cost of every answer through the real server: ``x-llmrelay-cost`` on unary answers, an SSE
comment line before the end of a stream, ``cost_usd`` in the access log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import pytest_asyncio

from llmrelay.pricing.cost import format_usd
from tests.e2e.conftest import Upstreams
from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

PRICE = {"input": 1.25, "output": 4.0, "cached_input": 0.5}
HELLO = [{"role": "user", "content": "Hello gateway, what does this cost?"}]
COST_PREFIX = ": x-llmrelay-cost="


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    base = upstreams.urls["openai"] + "/v1"
    config = {
        "models": [
            {
                "name": "priced",
                "targets": [{"provider": "openai", "model": "gpt-4o-mini", "base_url": base, "price": PRICE}],
            },
            {"name": "unpriced", "targets": [{"provider": "openai", "model": "my-llama", "base_url": base}]},
            {
                "name": "breaks",
                "targets": [
                    {
                        "provider": "mock",
                        "options": {"fail_after_chunks": 2},
                        "price": {"input": 1, "output": 1},
                    }
                ],
            },
        ]
    }
    async with run_gateway(config, tmp_path_factory.mktemp("cost")) as gw:
        yield gw


def expected_cost(usage: dict[str, Any]) -> float:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    fresh = usage["prompt_tokens"] - cached
    return (
        fresh * PRICE["input"] + cached * PRICE["cached_input"] + usage["completion_tokens"] * PRICE["output"]
    ) / 1e6


async def log_line(gateway: Gateway, request_id: str) -> dict[str, Any]:
    for _ in range(100):  # the line is written as the request ends; bounded wait for the file
        lines = [line for line in gateway.access_lines() if line["request_id"] == request_id]
        if lines:
            return lines[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no access-log line for {request_id}")


async def post(
    gateway: Gateway, path: str, body: dict[str, Any], request_id: str
) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(gateway.url + path, json=body, headers={"x-request-id": request_id}) as r,
    ):
        return r.status, dict(r.headers), await r.text()


async def test_a_unary_answer_carries_its_cost(gateway: Gateway) -> None:
    status, headers, text = await post(
        gateway, "/v1/chat/completions", {"model": "priced", "messages": HELLO}, "cost-unary"
    )
    assert status == 200
    usage = json.loads(text)["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    cost = expected_cost(usage)
    assert headers["x-llmrelay-cost"] == format_usd(cost)
    assert float(headers["x-llmrelay-cost"]) == pytest.approx(cost, rel=1e-6)
    line = await log_line(gateway, "cost-unary")
    assert line["cost_usd"] == pytest.approx(cost, rel=1e-6)


async def test_an_unknown_price_means_no_cost_rather_than_a_wrong_one(gateway: Gateway) -> None:
    status, headers, _ = await post(
        gateway, "/v1/chat/completions", {"model": "unpriced", "messages": HELLO}, "cost-unknown"
    )
    assert status == 200
    assert "x-llmrelay-cost" not in headers
    assert "cost_usd" not in await log_line(gateway, "cost-unknown")


async def test_a_stream_carries_its_cost_in_a_comment_before_done(gateway: Gateway) -> None:
    body = {"model": "priced", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, text = await post(gateway, "/v1/chat/completions", body, "cost-stream")
    assert status == 200
    assert "x-llmrelay-cost" not in headers  # headers left before the cost was known
    lines = [line for line in text.split("\n") if line]
    assert lines[-1] == "data: [DONE]"
    assert lines[-2].startswith(COST_PREFIX)
    usage = json.loads(lines[-3].removeprefix("data: "))["usage"]
    cost = expected_cost(usage)
    assert lines[-2] == COST_PREFIX + format_usd(cost)
    assert (await log_line(gateway, "cost-stream"))["cost_usd"] == pytest.approx(cost, rel=1e-6)


async def test_the_anthropic_face_carries_the_comment_before_message_stop(gateway: Gateway) -> None:
    body = {"model": "priced", "max_tokens": 100, "messages": HELLO, "stream": True}
    status, _, text = await post(gateway, "/v1/messages", body, "cost-messages")
    assert status == 200
    lines = [line for line in text.split("\n") if line]
    comment = next(i for i, line in enumerate(lines) if line.startswith(COST_PREFIX))
    assert lines[comment + 1] == "event: message_stop"
    assert float(lines[comment].removeprefix(COST_PREFIX)) > 0


async def test_the_openai_sdk_ignores_the_comment(gateway: Gateway) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20)
    stream = await client.chat.completions.create(
        model="priced",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: Hello gateway, what does this cost?"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_a_stream_that_fails_carries_no_cost(gateway: Gateway) -> None:
    body = {"model": "breaks", "messages": HELLO, "stream": True}
    status, _, text = await post(gateway, "/v1/chat/completions", body, "cost-broken")
    assert status == 200
    assert '"error"' in text
    assert COST_PREFIX not in text
    assert "cost_usd" not in await log_line(gateway, "cost-broken")


async def test_a_replayed_answer_cost_nothing(gateway: Gateway) -> None:
    body = {"model": "priced", "messages": HELLO}
    async with aiohttp.ClientSession() as s:
        answers = []
        for _ in range(2):
            async with s.post(
                gateway.url + "/v1/chat/completions", json=body, headers={"idempotency-key": "cost-replay"}
            ) as r:
                assert r.status == 200
                answers.append(dict(r.headers))
    assert float(answers[0]["x-llmrelay-cost"]) > 0
    assert answers[1]["idempotent-replayed"] == "true"
    assert answers[1]["x-llmrelay-cost"] == "0"


async def test_the_anthropic_sdk_ignores_the_comment(gateway: Gateway) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key="unused", max_retries=0, timeout=20)
    async with client.messages.stream(model="priced", max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "You said: Hello gateway, what does this cost?"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
