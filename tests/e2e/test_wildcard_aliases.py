"""Wildcard aliases through the real server: one config entry serves any matching name, with one
breaker for its target, and a key limited to a pattern reaches that pattern's names only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.conftest import MASTER_KEY, PROVIDER_KEY, Upstreams
from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

OPENAI_ONLY = "sk-relay-openai-only-e2e-0123456789ab"
NAMES_ONLY = "sk-relay-names-only-e2e-0123456789abc"
NAMES = 1_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def wild(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    base = upstreams.urls["openai"] + "/v1"
    config = {
        "server": {"master_key": MASTER_KEY},
        "keys": [
            {"key": OPENAI_ONLY, "name": "openai-only", "models": ["openai/*"]},
            {"key": NAMES_ONLY, "name": "names-only", "models": ["gpt", "openai/gpt-4o"]},
        ],
        "models": [
            {
                "name": "openai/*",
                "targets": [{"provider": "openai", "api_key": PROVIDER_KEY, "base_url": base}],
                # A window longer than the test: the breaker's recent calls count every name.
                "circuit_breaker": {"window": 600},
                "retry": {"max_retries": 0},
            },
            {
                "name": "slow/*",
                "targets": [{"provider": "openai", "api_key": PROVIDER_KEY, "base_url": base}],
                "timeout": {"total": 0.5},
                "retry": {"max_retries": 0},
            },
            {
                "name": "gpt",
                "targets": [
                    {"provider": "openai", "model": "gpt-fixed", "api_key": PROVIDER_KEY, "base_url": base}
                ],
            },
        ],
    }
    async with run_gateway(config, tmp_path_factory.mktemp("wild")) as gw:
        yield gw


async def _chat(session: aiohttp.ClientSession, gw: Gateway, model: str, key: str) -> tuple[int, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    async with session.post(gw.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_one_wildcard_entry_serves_a_thousand_names_through_one_breaker(
    wild: Gateway, upstreams: Upstreams
) -> None:
    names = [f"model-{i}" for i in range(NAMES)]
    gate = asyncio.Semaphore(32)

    async def one(session: aiohttp.ClientSession, name: str) -> int:
        async with gate:
            status, _ = await _chat(session, wild, f"openai/{name}", MASTER_KEY)
            return status

    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(*(one(session, n) for n in names))
        headers = {"authorization": f"Bearer {MASTER_KEY}"}
        async with session.get(wild.url + "/admin/circuits", headers=headers) as resp:
            circuits = (await resp.json())["data"]
    assert statuses == [200] * NAMES
    # Each name reached the upstream once, as the part the `*` matched.
    assert sorted(r.json["model"] for r in upstreams.openai.requests) == sorted(names)
    assert all(r.path == "/v1/chat/completions" for r in upstreams.openai.requests)
    mine = [c for c in circuits if c["target"].startswith("openai/*:")]
    assert len(mine) == 1 and len(circuits) == 3  # the pattern's one target, `slow/*`'s and `gpt`'s
    assert mine[0]["recent_calls"] == NAMES


async def test_a_key_limited_to_a_pattern_reaches_its_names_only(wild: Gateway, upstreams: Upstreams) -> None:
    async with aiohttp.ClientSession() as session:
        ok, answer = await _chat(session, wild, "openai/x", OPENAI_ONLY)
        forbidden, denied = await _chat(session, wild, "gpt", OPENAI_ONLY)
        unknown, missing = await _chat(session, wild, "claude", OPENAI_ONLY)
        empty, _ = await _chat(session, wild, "openai/", OPENAI_ONLY)
    assert ok == 200 and answer["object"] == "chat.completion"
    assert [r.json["model"] for r in upstreams.openai.requests] == ["x"]
    assert forbidden == 403 and denied["error"]["code"] == "model_not_allowed"
    assert (
        denied["error"]["param"] == "model"
        and "Models this key may use: openai/*" in denied["error"]["message"]
    )
    assert unknown == 404 and missing["error"]["code"] == "model_not_found"
    assert "gpt" not in missing["error"]["message"]  # a restricted key never learns the other aliases
    assert empty == 404


async def test_models_lists_named_aliases_and_patterns(wild: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        for key, expected in (
            (MASTER_KEY, ["openai/*", "slow/*", "gpt"]),
            (OPENAI_ONLY, ["openai/*"]),
            (NAMES_ONLY, ["gpt", "openai/gpt-4o"]),  # an exact name that a pattern serves
        ):
            headers = {"authorization": f"Bearer {key}"}
            async with session.get(wild.url + "/v1/models", headers=headers) as resp:
                assert [m["id"] for m in (await resp.json())["data"]] == expected
            async with session.get(wild.url + "/v1/models/openai/gpt-4o", headers=headers) as resp:
                assert resp.status == 200 and (await resp.json())["id"] == "openai/gpt-4o"


async def test_a_patterns_own_total_timeout_bounds_its_names(wild: Gateway, upstreams: Upstreams) -> None:
    upstreams.openai.hold()
    try:
        async with aiohttp.ClientSession() as session:
            status, body = await _chat(session, wild, "slow/x", MASTER_KEY)
    finally:
        upstreams.openai.release()
    assert status == 504 and body["error"]["code"] == "deadline_exceeded"
    assert [r.json["model"] for r in upstreams.openai.requests] == ["x"]


async def test_a_key_listing_an_exact_name_a_pattern_serves_reaches_that_name_only(
    wild: Gateway, upstreams: Upstreams
) -> None:
    async with aiohttp.ClientSession() as session:
        ok, _ = await _chat(session, wild, "openai/gpt-4o", NAMES_ONLY)
        forbidden, denied = await _chat(session, wild, "openai/o3", NAMES_ONLY)
    assert ok == 200 and [r.json["model"] for r in upstreams.openai.requests] == ["gpt-4o"]
    assert forbidden == 403 and denied["error"]["code"] == "model_not_allowed"
