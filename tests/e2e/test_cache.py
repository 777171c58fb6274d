"""The cache through the real server with the official ``openai`` SDK: unary and streamed hits and
misses, the ``x-llmrelay-cache`` header, tenants kept apart, failed and abandoned streams never
stored, and exact entries on a real Redis shared by two server processes."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio

from tests.e2e.conftest import Upstreams
from tests.e2e.gateway import Gateway, run_gateway
from tests.services import require

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY_A = "sk-relay-cache-tenant-a-0123456789"
KEY_B = "sk-relay-cache-tenant-b-0123456789"
PRICE = {"input": 2.0, "output": 8.0}


def config(upstreams: Upstreams, *, state: dict[str, Any] | None = None) -> dict[str, Any]:
    base = upstreams.urls["openai"] + "/v1"
    target = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "api_key": "sk-up",
        "base_url": base,
        "price": PRICE,
    }
    raw: dict[str, Any] = {
        "server": {"heartbeat": 0.2},
        "keys": [{"key": KEY_A, "name": "a"}, {"key": KEY_B, "name": "b"}],
        "models": [
            {"name": "cached", "targets": [target], "cache": {"ttl": 600}, "retry": {"max_retries": 0}},
            {"name": "plain", "targets": [target]},
            {"name": "embed", "targets": [target], "cache": {"ttl": 600, "scope": "shared"}},
            {
                "name": "breaks",
                "targets": [{"provider": "mock", "options": {"fail_after_chunks": 2}}],
                "cache": {"ttl": 600},
            },
            {
                "name": "slow",
                "targets": [{"provider": "mock", "options": {"chunk_delay": 0.05, "chunks": 40}}],
                "cache": {"ttl": 600},
            },
        ],
    }
    if state is not None:
        raw["state"] = state
    return raw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    async with run_gateway(config(upstreams), tmp_path_factory.mktemp("cache")) as gw:
        yield gw


def client(gateway: Gateway, key: str = KEY_A) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=20)


def question() -> list[Any]:
    return [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": f"What is {uuid.uuid4().hex}?"},
    ]


async def ask(gateway: Gateway, messages: list[Any], *, key: str = KEY_A, **extra: Any) -> tuple[str, str]:
    raw = await client(gateway, key).chat.completions.with_raw_response.create(
        model="cached", messages=messages, **extra
    )
    reply = raw.parse()
    return raw.headers.get("x-llmrelay-cache", ""), reply.choices[0].message.content or ""


async def test_unary_miss_then_hit_without_calling_upstream(gateway: Gateway, upstreams: Upstreams) -> None:
    messages = question()
    assert (await ask(gateway, messages))[0] == "miss"
    calls = len(upstreams.openai.requests)
    raw = await client(gateway).chat.completions.with_raw_response.create(model="cached", messages=messages)
    assert raw.headers["x-llmrelay-cache"] == "hit"
    assert raw.headers["x-llmrelay-cost"] == "0"
    assert "idempotent-replayed" not in raw.headers
    assert raw.parse().choices[0].message.content == "You said: " + messages[-1]["content"]
    assert len(upstreams.openai.requests) == calls
    line = next(line for line in reversed(gateway.access_lines()) if line.get("cache") == "hit")
    assert line["cost_saved_usd"] > 0


async def test_changed_system_prompt_or_temperature_misses(gateway: Gateway) -> None:
    messages = question()
    await ask(gateway, messages)
    other_system = [{"role": "system", "content": "Answer at length."}, messages[-1]]
    assert (await ask(gateway, other_system))[0] == "miss"
    assert (await ask(gateway, messages, temperature=0.9))[0] == "miss"
    assert (await ask(gateway, messages))[0] == "hit"


async def test_tenant_b_never_sees_tenant_a(gateway: Gateway) -> None:
    messages = question()
    await ask(gateway, messages, key=KEY_A)
    assert (await ask(gateway, messages, key=KEY_B))[0] == "miss"
    assert (await ask(gateway, messages, key=KEY_B))[0] == "hit"


async def test_cache_control_headers(gateway: Gateway) -> None:
    messages = question()
    c = client(gateway)

    async def with_header(value: str) -> str:
        raw = await c.chat.completions.with_raw_response.create(
            model="cached", messages=messages, extra_headers={"cache-control": value}
        )
        return raw.headers["x-llmrelay-cache"]

    assert await with_header("no-store") == "bypass"
    assert (await ask(gateway, messages))[0] == "miss"  # no-store stored nothing
    assert await with_header("no-cache") == "miss"
    assert await with_header("max-age=600") == "hit"


async def test_an_uncached_alias_has_no_cache_header(gateway: Gateway) -> None:
    raw = await client(gateway).chat.completions.with_raw_response.create(model="plain", messages=question())
    assert "x-llmrelay-cache" not in raw.headers


async def stream_text(
    gateway: Gateway, messages: list[Any], *, model: str = "cached"
) -> tuple[str, str, int]:
    raw = await client(gateway).chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in raw.parse()]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert chunks[-1].usage is not None
    return raw.headers["x-llmrelay-cache"], text, chunks[-1].usage.completion_tokens


async def test_streamed_miss_is_stored_and_a_streamed_hit_replays(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    messages = question()
    outcome, text, tokens = await stream_text(gateway, messages)
    assert outcome == "miss" and text == "You said: " + messages[-1]["content"] and tokens > 0
    calls = len(upstreams.openai.requests)
    assert await stream_text(gateway, messages) == ("hit", text, tokens)
    assert await ask(gateway, messages) == ("hit", text)  # the same entry answers unary calls
    assert len(upstreams.openai.requests) == calls


async def test_a_unary_miss_answers_a_streamed_request(gateway: Gateway) -> None:
    messages = question()
    _, text = await ask(gateway, messages)
    outcome, streamed, _ = await stream_text(gateway, messages)
    assert (outcome, streamed) == ("hit", text)


async def test_a_failed_stream_is_not_stored(gateway: Gateway) -> None:
    messages = question()
    for _ in range(2):
        raw = await client(gateway).chat.completions.with_raw_response.create(
            model="breaks", messages=messages, stream=True
        )
        assert raw.headers["x-llmrelay-cache"] == "miss"
        with pytest.raises(openai.APIError):
            async for _chunk in raw.parse():
                pass


async def test_an_abandoned_stream_is_not_stored(gateway: Gateway) -> None:
    messages = question()
    body = {"model": "slow", "messages": messages, "stream": True}
    headers = {"authorization": f"Bearer {KEY_A}"}
    url = gateway.url + "/v1/chat/completions"
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as response:
        assert response.headers["x-llmrelay-cache"] == "miss"
        await response.content.readline()  # the first event, then leave
    deadline = asyncio.get_running_loop().time() + 10
    while not any(line.get("outcome") == "client_closed" for line in gateway.access_lines()):
        assert asyncio.get_running_loop().time() < deadline, "the abandoned stream was never logged"
        await asyncio.sleep(0.05)
    outcome, _, _ = await stream_text(gateway, messages, model="slow")
    assert outcome == "miss"


async def test_embeddings_shared_scope_hits_across_keys(gateway: Gateway, upstreams: Upstreams) -> None:
    text = [f"embed me {uuid.uuid4().hex}"]
    first = await client(gateway, KEY_A).embeddings.with_raw_response.create(model="embed", input=text)
    second = await client(gateway, KEY_B).embeddings.with_raw_response.create(model="embed", input=text)
    assert first.headers["x-llmrelay-cache"] == "miss" and second.headers["x-llmrelay-cache"] == "hit"
    assert first.parse().data[0].embedding == second.parse().data[0].embedding


async def test_two_servers_share_exact_entries_through_redis(upstreams: Upstreams, tmp_path: Path) -> None:
    require(6379, "Redis")
    state = {"cache": {"url": "redis://127.0.0.1:6379/0", "namespace": "t" + uuid.uuid4().hex[:16]}}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with (
        run_gateway(config(upstreams, state=state), tmp_path / "one") as one,
        run_gateway(config(upstreams, state=state), tmp_path / "two") as two,
    ):
        messages = question()
        outcome, text = await ask(one, messages)
        assert outcome == "miss"
        calls = len(upstreams.openai.requests)
        assert await ask(two, messages) == ("hit", text)
        assert (await stream_text(two, messages))[:2] == ("hit", text)
        assert (await ask(two, messages, key=KEY_B))[0] == "miss"  # still per tenant
        assert len(upstreams.openai.requests) == calls + 1


SEMANTIC = importlib.util.find_spec("onnxruntime") is not None


@pytest.mark.skipif(not SEMANTIC, reason="the `semantic` extra is not installed (scripts/test installs it)")
async def test_semantic_hits_through_the_server(upstreams: Upstreams, tmp_path: Path) -> None:
    raw = config(upstreams)
    raw["models"][0]["cache"]["semantic"] = {}
    async with run_gateway(raw, tmp_path) as gateway:
        system = {"role": "system", "content": f"Answer briefly. {uuid.uuid4().hex}"}

        def asking(text: str) -> list[Any]:
            return [system, {"role": "user", "content": text}]

        outcome, text = await ask(gateway, asking("How do I reset my account password?"))
        assert outcome == "miss"
        outcome, again = await ask(gateway, asking("How can I reset the password of my account?"))
        assert outcome.startswith("semantic-hit; similarity=0.9") and again == text
        streamed, replayed, _ = await stream_text(
            gateway, asking("How can I reset the password of my account?")
        )
        assert streamed.startswith("semantic-hit") and replayed == text  # replayed as a stream
        assert (await ask(gateway, asking("What was the population of France in 2020?")))[0] == "miss"
        assert (await ask(gateway, asking("What was the population of France in 2021?")))[0] == "miss"


@pytest.mark.skipif(not SEMANTIC, reason="the `semantic` extra is not installed (scripts/test installs it)")
async def test_two_servers_share_semantic_questions_through_redis(
    upstreams: Upstreams, tmp_path: Path
) -> None:
    """A question cached through one server is served by meaning through the other: their
    in-process indexes follow each other through Redis (``cache.index_sync``)."""
    require(6379, "Redis")
    master = "sk-master-semantic-sharing-0123456789"
    raw = config(
        upstreams,
        state={"cache": {"url": "redis://127.0.0.1:6379/0", "namespace": "t" + uuid.uuid4().hex[:16]}},
    )
    raw["server"]["master_key"] = master
    raw["models"][0]["cache"]["semantic"] = {}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with (
        run_gateway(raw, tmp_path / "one") as one,
        run_gateway(raw, tmp_path / "two") as two,
        aiohttp.ClientSession(headers={"authorization": f"Bearer {master}"}) as admin,
    ):
        system = {"role": "system", "content": f"Answer briefly. {uuid.uuid4().hex}"}
        outcome, text = await ask(
            one, [system, {"role": "user", "content": "How do I reset my account password?"}]
        )
        assert outcome == "miss"
        calls = len(upstreams.openai.requests)
        async with asyncio.timeout(20):  # the other server's reader adopts it in the background
            while True:
                async with admin.get(two.url + "/admin/cache") as r:
                    sharing = (await r.json())["semantic_sharing"]
                if sharing["adopted"] >= 1:
                    break
                await asyncio.sleep(0.05)
        assert sharing["following"] is True
        paraphrase = [system, {"role": "user", "content": "How can I reset the password of my account?"}]
        outcome, again = await ask(two, paraphrase)
        assert outcome.startswith("semantic-hit; similarity=0.9") and again == text
        assert len(upstreams.openai.requests) == calls
