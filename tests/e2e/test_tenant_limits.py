"""Tenant limits through a real ``llmrelay serve``: the official SDKs see 429 with Retry-After and
the rate-limit headers, and the ``openai`` SDK's own retry gets through once the window refills."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio

from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

MASTER = "sk-master-limits-0123456789"
SDK_KEY = "sk-relay-limits-sdk-abcdefghijklmnop"
TINY_KEY = "sk-relay-limits-tiny-abcdefghijklmnop"
FREE_KEY = "sk-relay-limits-free-abcdefghijklmnop"
HELLO = [{"role": "user", "content": "Hello gateway"}]

CONFIG: dict[str, Any] = {
    "server": {"master_key": MASTER},
    "models": [{"name": "mock", "targets": [{"provider": "mock", "options": {"text": "hi there"}}]}],
    "tiers": {
        # 30 a minute: a unit every 2 s, so a refused SDK call's own retry waits about 2 s
        "sdk": {"rpm": 30, "tpm": 100_000},
        "tiny": {"tpm": 50},
        "free": {"rpm": 20, "tpm": 40_000, "concurrent": 2, "user": {"rpm": 10}},
    },
    "budgets": [{"scope": "team", "match": "blue", "window": "monthly", "limit_usd": 5, "name": "blue-team"}],
    "keys": [
        {"key": SDK_KEY, "name": "sdk", "tier": "sdk"},
        {"key": TINY_KEY, "name": "tiny", "tier": "tiny"},
        {"key": FREE_KEY, "name": "free", "tier": "free", "metadata": {"user": "ann", "team": "blue"}},
    ],
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    async with run_gateway(CONFIG, tmp_path_factory.mktemp("limits")) as gw:
        yield gw


def client(gateway: Gateway, key: str, retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=retries, timeout=20)


async def test_openai_sdk_sees_429_and_headers_and_its_retry_succeeds(gateway: Gateway) -> None:
    c = client(gateway, SDK_KEY)
    first = await c.chat.completions.with_raw_response.create(model="mock", messages=HELLO)  # type: ignore[arg-type]
    assert first.headers["x-ratelimit-limit-requests"] == "30"
    assert first.headers["x-ratelimit-remaining-requests"] == "29"
    assert first.headers["x-ratelimit-reset-requests"] in ("2s", "1.999s", "1.998s")
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100_000
    assert "anthropic-ratelimit-requests-limit" not in first.headers
    for _ in range(29):
        await c.chat.completions.create(model="mock", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as caught:
        await c.chat.completions.create(model="mock", messages=HELLO)  # type: ignore[arg-type]
    refused = caught.value.response
    assert refused.headers["retry-after"] in ("1", "2")
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-limit-requests"] == "30"
    assert "30 requests per minute" in caught.value.message
    assert caught.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    started = time.monotonic()
    reply = await client(gateway, SDK_KEY, retries=2).chat.completions.create(model="mock", messages=HELLO)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "hi there"
    assert time.monotonic() - started > 0.5  # it waited for the window, as Retry-After said


async def test_anthropic_headers_on_messages(gateway: Gateway) -> None:
    body = {"model": "mock", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/v1/messages", json=body, headers={"x-api-key": FREE_KEY}) as resp,
    ):
        assert resp.status == 200
        headers = resp.headers
    # the per-user limit (10) is nearer exhaustion than the per-key one (20)
    assert headers["anthropic-ratelimit-requests-limit"] == "10"
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["anthropic-ratelimit-requests-remaining"] == headers["x-ratelimit-remaining-requests"]
    reset = headers["anthropic-ratelimit-requests-reset"]
    assert reset.endswith("Z") and "T" in reset
    assert headers["anthropic-ratelimit-tokens-limit"] == "40000"


async def test_a_request_that_can_never_fit_is_told_so(gateway: Gateway) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await client(gateway, TINY_KEY).chat.completions.create(model="mock", messages=HELLO, max_tokens=500)  # type: ignore[arg-type]
    assert "can never be admitted" in caught.value.message
    assert "retry-after" not in caught.value.response.headers


async def test_key_info_shows_limits_and_headroom(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/v1/key/info", headers={"authorization": f"Bearer {FREE_KEY}"}) as resp,
    ):
        assert resp.status == 200
        info = await resp.json()
    assert info["key"]["tier"] == "free" and info["key"]["user"] == "ann"
    limits = info["limits"]
    assert limits["tier"] == "free"
    by_scope = {entry["scope"]: entry for entry in limits["limits"]}
    assert by_scope["key"]["requests_per_minute"]["limit"] == 20
    assert by_scope["key"]["concurrent"] == {"limit": 2}
    assert by_scope["user"]["requests_per_minute"]["limit"] == 10
    assert 0 <= by_scope["user"]["requests_per_minute"]["remaining"] <= 10
    [budget] = info["budgets"]  # the team's budget, from the key's metadata
    assert budget["name"] == "blue-team" and budget["value"] == "blue" and budget["limit_usd"] == 5


async def test_key_info_needs_a_key(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/v1/key/info") as resp:
        assert resp.status == 401


async def test_admin_keys_refuse_an_unknown_tier(gateway: Gateway, tmp_path: Path) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/admin/keys",
            json={"name": "x", "tier": "gold"},
            headers={"authorization": f"Bearer {MASTER}"},
        ) as resp,
    ):
        assert resp.status == 400
        assert "unknown tier 'gold'" in (await resp.json())["error"]["message"]


async def test_anthropic_callers_get_429_in_their_shape(gateway: Gateway) -> None:
    body = {"model": "mock", "max_tokens": 500, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/v1/messages", json=body, headers={"x-api-key": TINY_KEY}) as resp,
    ):
        assert resp.status == 429
        payload = await resp.json()
        assert resp.headers["anthropic-ratelimit-tokens-limit"] == "50"
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "rate_limit_error"
    assert "can never be admitted" in payload["error"]["message"]


async def test_streams_carry_the_headers_too(gateway: Gateway) -> None:
    c = client(gateway, FREE_KEY)
    async with c.chat.completions.with_streaming_response.create(
        model="mock",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        assert response.headers["x-ratelimit-limit-requests"] == "10"
        assert int(response.headers["x-ratelimit-remaining-tokens"]) < 40_000
        chunks = [line async for line in response.iter_lines()]
    assert any("[DONE]" in line for line in chunks)
