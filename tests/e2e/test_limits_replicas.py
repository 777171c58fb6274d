"""Two ``llmrelay serve`` processes sharing the real Redis on 6379: a burst from 200 concurrent
clients spread over both is admitted at most 1.01 x (capacity + refill x elapsed) + 1 times."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from tests.e2e.gateway import run_gateway
from tests.services import require

KEY = "sk-relay-replicas-abcdefghijklmnop"
RPM = 60  # a burst of 60, then one a second
CLIENTS = 200
PER_CLIENT = 3


async def test_two_replicas_share_one_limit(tmp_path: Path) -> None:
    require(6379, "Redis")
    tier = f"t{uuid.uuid4().hex[:12]}"  # its own counters: other runs never share them
    config = {
        "server": {"master_key": "sk-master-replicas-0123456789"},
        "state": {"redis": {"url": "redis://127.0.0.1:6379/0", "on_error": "closed"}},
        "models": [{"name": "mock", "targets": [{"provider": "mock"}]}],
        "tiers": {tier: {"rpm": RPM}},
        "keys": [{"key": KEY, "name": "burst", "tier": tier}],
    }
    async with AsyncExitStack() as stack:
        gateways = [
            await stack.enter_async_context(run_gateway(config, tmp_path / name))
            for name in ("one", "two")
            if not (tmp_path / name).mkdir()
        ]
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS * 2))
        )
        body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {KEY}"}
        statuses: list[int] = []
        go = asyncio.Event()

        async def client(i: int) -> None:
            await go.wait()
            for n in range(PER_CLIENT):
                url = gateways[(i + n) % 2].url + "/v1/chat/completions"
                async with session.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    statuses.append(resp.status)

        tasks = [asyncio.create_task(client(i)) for i in range(CLIENTS)]
        await asyncio.sleep(0)
        started = time.monotonic()
        go.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        logs = "".join(g.log() for g in gateways)
    admitted = statuses.count(200)
    assert "rate-limit store unreachable" not in logs, logs[-2000:]
    assert set(statuses) <= {200, 429}
    assert len(statuses) == CLIENTS * PER_CLIENT
    bound = 1.01 * (RPM + RPM / 60 * elapsed) + 1
    print(f"admitted {admitted} of {len(statuses)} in {elapsed:.2f} s; bound {bound:.1f}")
    assert RPM <= admitted <= bound
