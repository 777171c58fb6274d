"""The cache between the tenant limits and the budget (docs/architecture.md §4), through the server:
a hit counts as a request, but takes no tokens and no budget, and its saved cost is logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "sk-relay-cache-limits-abcdefghijklmnop"
PRICED_MOCK = {
    "provider": "mock",
    "options": {"text": "a cached answer"},
    "price": {"input": 1000, "output": 1000},
}
CONFIG: dict[str, Any] = {
    "models": [{"name": "mock", "targets": [PRICED_MOCK], "cache": {"ttl": 600}}],
    # A slow refill (100 tokens/s): a hit that took its ~60 tokens would show.
    "tiers": {"metered": {"rpm": 100, "tpm": 6_000}},
    "budgets": [{"scope": "key", "window": "total", "limit_usd": 100, "name": "per-key"}],
    "keys": [{"key": KEY, "name": "metered", "tier": "metered"}],
}
BODY = {"model": "mock", "max_tokens": 50, "messages": [{"role": "user", "content": "the same question"}]}
AUTH = {"authorization": f"Bearer {KEY}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    async with run_gateway(CONFIG, tmp_path_factory.mktemp("cache-limits")) as gw:
        yield gw


async def _call(session: aiohttp.ClientSession, gateway: Gateway) -> aiohttp.ClientResponse:
    async with session.post(gateway.url + "/v1/chat/completions", json=BODY, headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()
        return resp


async def _standing(session: aiohttp.ClientSession, gateway: Gateway) -> tuple[float, int]:
    """USD spent or held by the key's budget, and the tokens left in its tier's minute."""
    async with session.get(gateway.url + "/v1/key/info", headers=AUTH) as resp:
        info = await resp.json()
    [budget] = info["budgets"]
    [limits] = [entry for entry in info["limits"]["limits"] if entry["scope"] == "key"]
    return budget["spent_usd"] + budget["reserved_usd"], limits["tokens_per_minute"]["remaining"]


async def test_a_hit_is_a_request_but_takes_no_tokens_and_no_budget(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as session:
        miss = await _call(session, gateway)
        assert miss.headers["x-llmrelay-cache"] == "miss"
        spent, tokens = await _standing(session, gateway)
        assert spent > 0 and tokens < 6_000  # the priced miss was debited and took tokens
        hit = await _call(session, gateway)
        assert hit.headers["x-llmrelay-cache"] == "hit"
        spent_after_hit, tokens_after_hit = await _standing(session, gateway)
    assert spent_after_hit == pytest.approx(spent)  # no budget for a hit ...
    assert tokens_after_hit >= tokens  # ... and no tokens (the bucket only refilled)
    requests = [int(r.headers["x-ratelimit-remaining-requests"]) for r in (miss, hit)]
    assert requests[1] < requests[0]  # but it counted as a request
    line = [entry for entry in gateway.access_lines() if entry.get("cache") == "hit"][-1]
    assert line["cost_saved_usd"] > 0
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/metrics") as resp:
        exposition = await resp.text()
    assert 'llmrelay_cache_lookups_total{alias="mock",outcome="hit"} 1.0' in exposition
    assert 'llmrelay_cache_saved_usd_total{alias="mock"}' in exposition
