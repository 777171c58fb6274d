"""Budgets across two ``llmrelay serve`` processes sharing real PostgreSQL: under a burst of
concurrent calls spread over both, spend never passes the limit by more than one call's maximum
cost, refusals are 429 ``budget_exceeded`` in the caller's error shape, and the spend survives a
restart (a third process refuses at once)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from llmrelay.pricing.tokens import estimate_input_tokens
from llmrelay.types import ChatRequest, text_message
from tests.e2e.gateway import run_gateway
from tests.pg import SERVER, pg_schema

KEY = "sk-relay-budget-0123456789abcdef"
PRICE = {"input": 1000.0, "output": 1000.0}  # $0.001 per token
PROMPT = "Please summarise the quarterly budget"
MAX_TOKENS = 20
LIMIT = 1.0


def max_cost() -> float:
    request = ChatRequest(model="m", messages=(text_message("user", PROMPT),), max_tokens=MAX_TOKENS)
    return (estimate_input_tokens(request) + MAX_TOKENS) * PRICE["input"] / 1e6


def config(url: str) -> dict[str, Any]:
    return {
        "keys": [{"key": KEY, "metadata": {"team": "search"}}],
        "state": {"url": url},
        "budgets": [
            {"scope": "team", "match": "search", "window": "total", "limit_usd": LIMIT, "name": "search"}
        ],
        "models": [{"name": "m", "targets": [{"provider": "mock", "price": PRICE}]}],
    }


async def ask(session: aiohttp.ClientSession, url: str, *, anthropic: bool = False) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {KEY}"}
    messages = [{"role": "user", "content": PROMPT}]
    path, body = "/v1/chat/completions", {"model": "m", "messages": messages, "max_tokens": MAX_TOKENS}
    if anthropic:
        path = "/v1/messages"
    async with session.post(url + path, json=body, headers=headers) as r:
        return r.status, (await r.json(), dict(r.headers))


async def spent(schema: str) -> float:
    conn = await asyncpg.connect(SERVER)
    try:
        return float(await conn.fetchval(f'SELECT coalesce(sum(spent), 0) FROM "{schema}".budget_spend'))
    finally:
        await conn.close()


async def test_two_servers_never_overspend_and_the_spend_survives_a_restart(tmp_path: Path) -> None:
    bound = max_cost()
    assert bound < LIMIT / 10  # a burst admits many calls, so the bound is tested, not trivial
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    async with pg_schema("budget") as url:
        schema = url.rsplit("=", 1)[1]
        async with (
            run_gateway(config(url), tmp_path / "a") as a,
            run_gateway(config(url), tmp_path / "b") as b,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s,
        ):
            answers = await asyncio.gather(*(ask(s, (a, b)[i % 2].url) for i in range(200)))
            statuses = [status for status, _ in answers]
            assert set(statuses) == {200, 429}
            refused = next(body for status, (body, _) in answers if status == 429)
            assert refused["error"]["code"] == "budget_exceeded"
            assert "budget 'search' (team=search, total)" in refused["error"]["message"]
            total = await spent(schema)
            admitted = statuses.count(200)
            assert total <= LIMIT + bound
            # Each admitted call held its maximum cost: at least as many as fit were admitted.
            assert admitted >= int(LIMIT // bound), (total, admitted)
            assert a.log().count('"status":429') + b.log().count('"status":429') == statuses.count(429)
        # A third server on the same database knows what was spent: it admits only what is left.
        async with run_gateway(config(url), tmp_path / "c") as c, aiohttp.ClientSession() as s:
            before = await spent(schema)
            answers = await asyncio.gather(*(ask(s, c.url) for _ in range(100)))
            admitted = [status for status, _ in answers].count(200)
            body, _ = next(answer for status, answer in answers if status == 200)
            per_call = body["usage"]["total_tokens"] * PRICE["input"] / 1e6  # the actual cost of one
            # Had it forgotten the spend (before > LIMIT / 3), it would admit about LIMIT / per_call.
            assert before > LIMIT / 3
            assert admitted <= (LIMIT - before) / per_call + 1
            assert await spent(schema) <= LIMIT + bound
            _, (_, headers) = next(answer for answer in answers if answer[0] == 429)
            assert headers.get("x-should-retry") == "false"
            for _ in range(int(LIMIT // bound) + 1):  # spend what is left, one call at a time
                status, (body, _) = await ask(s, c.url, anthropic=True)
                if status == 429:
                    break
            assert status == 429 and body["type"] == "error"  # the Anthropic face's error shape
            assert "budget 'search'" in body["error"]["message"]
