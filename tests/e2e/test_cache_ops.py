"""Cache operations through the real server and the real CLI: ``GET /admin/cache`` (master key
only, per-alias counters), ``llmrelay cache warm`` and ``llmrelay cache clear`` round trips."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.gateway import LLMRELAY, Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

MASTER = "sk-master-cache-ops-0123456789"
KEY = "sk-relay-cache-ops-key-0123456789"
CONFIG: dict[str, Any] = {
    "server": {"master_key": MASTER},
    "keys": [{"key": KEY, "name": "app"}],
    "models": [
        {"name": "faq", "targets": [{"provider": "mock"}], "cache": {"ttl": 600, "scope": "shared"}},
        {"name": "ops-*", "targets": [{"provider": "mock"}], "cache": {"ttl": 600, "scope": "shared"}},
        {"name": "plain", "targets": [{"provider": "mock"}]},
    ],
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    async with run_gateway(CONFIG, tmp_path_factory.mktemp("cache-ops")) as gw:
        yield gw


async def ask(gateway: Gateway, model: str, text: str, **headers: str) -> tuple[str, str]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {KEY}", **headers},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        return resp.headers["x-llmrelay-cache"], answer["choices"][0]["message"]["content"]


async def admin_stats(gateway: Gateway, key: str | None = MASTER) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/admin/cache", headers=headers) as resp,
    ):
        return resp.status, await resp.json()


async def cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(LLMRELAY),
        "cache",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LLMRELAY_MASTER_KEY": MASTER},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_admin_cache_needs_the_master_key(gateway: Gateway) -> None:
    assert (await admin_stats(gateway, None))[0] == 401
    status, body = await admin_stats(gateway, KEY)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"  # a key without admin scope
    assert KEY not in json.dumps(body)


async def test_admin_cache_counts_per_alias(gateway: Gateway) -> None:
    text = f"stats {uuid.uuid4().hex}"
    _, before = await admin_stats(gateway)
    assert set(before["aliases"]) == {"faq", "ops-*"}  # caching aliases only; a pattern counts as one
    assert await ask(gateway, "faq", text) == ("miss", f"You said: {text}")  # the mock echoes
    assert await ask(gateway, "faq", text) == ("hit", f"You said: {text}")
    assert (await ask(gateway, "faq", text, **{"cache-control": "no-store"}))[0] == "bypass"
    assert (await ask(gateway, "ops-one", text))[0] == "miss"
    assert (await ask(gateway, "ops-two", text))[0] == "miss"  # a pattern's names are keyed apart
    status, after = await admin_stats(gateway)
    assert status == 200 and after["object"] == "cache" and isinstance(after["worker_pid"], int)
    faq, old = after["aliases"]["faq"], before["aliases"]["faq"]
    assert (faq["hits"] - old["hits"], faq["misses"] - old["misses"], faq["bypass"] - old["bypass"]) == (
        1,
        1,
        1,
    )
    assert faq["tokens_saved"] > old["tokens_saved"]
    assert after["aliases"]["ops-*"]["misses"] - before["aliases"]["ops-*"]["misses"] == 2


async def test_warm_then_clear_round_trip_with_the_cli(gateway: Gateway, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    lines = [
        {"model": "faq", "question": f"Opening hours? {tag}", "answer": f"Nine to five. {tag}"},
        {"model": "faq", "messages": [{"role": "user", "content": f"Refunds? {tag}"}], "answer": "30 days."},
        {"model": "ops-x", "question": f"Called {tag}"},  # no answer: the model is called
        {"model": "plain", "question": "not cached", "answer": "never"},
    ]
    path = tmp_path / "warm.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    code, _, err = await cli("warm", str(path), "--url", gateway.url, "--batch", "3")
    assert code == 1, err  # the `plain` line failed, the others were kept
    assert "line 4: the model `plain` has no cache configured" in err
    assert "stored 2, called 1, failed 1" in err
    assert await ask(gateway, "faq", f"Opening hours? {tag}") == ("hit", f"Nine to five. {tag}")
    assert await ask(gateway, "faq", f"Refunds? {tag}") == ("hit", "30 days.")
    assert await ask(gateway, "ops-x", f"Called {tag}") == ("hit", f"You said: Called {tag}")

    code, out, err = await cli("clear", "--model", "faq", "--url", gateway.url)
    assert code == 0 and json.loads(out) == {"cleared": "faq"}, err
    assert (await ask(gateway, "faq", f"Refunds? {tag}"))[0] == "miss"
    assert (await ask(gateway, "ops-x", f"Called {tag}"))[0] == "hit"  # another alias: kept
    code, out, _ = await cli("clear", "--url", gateway.url)
    assert code == 0 and json.loads(out) == {"cleared": "*"}
    assert (await ask(gateway, "ops-x", f"Called {tag}"))[0] == "miss"


async def test_cli_errors_are_one_line(gateway: Gateway, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model": "faq", "question": "q", "colour": "red"}\n')
    code, _, err = await cli("warm", str(bad), "--url", gateway.url)
    assert code == 2 and "line 1" in err and "colour" in err
    code, _, err = await cli("clear", "--model", "nope", "--url", gateway.url)
    assert code == 1 and "404" in err and "nope" in err
    code, _, err = await cli("stats", "--url", gateway.url, "--master-key", "wrong")
    assert code == 1 and "401" in err and "wrong" not in err
