"""Many concurrent streams through the real server, a third of them abandoned mid-way by their client.

What it catches: a stream that never ends on the server (a lost wake-up in the pump, a writer that
waits forever, a disconnect that is never noticed), a leaked task, or a traceback under load: every
request must end with exactly one access-log line with the right outcome, promptly.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aiohttp

from tests.e2e.gateway import Gateway, run_gateway

STREAMS = 200
CONCURRENCY = 50


async def _one(session: aiohttp.ClientSession, gateway: Gateway, n: int, leave: bool) -> str:
    body = {"model": "storm", "messages": [{"role": "user", "content": f"storm {n}"}], "stream": True}
    headers = {"x-request-id": f"storm-{n}"}
    async with session.post(gateway.url + "/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status == 200
        if leave:
            await r.content.readline()
            r.close()  # the client goes away mid-stream
            return "client_closed"
        text = await r.read()
    assert text.rstrip().endswith(b"data: [DONE]")
    return "ok"


async def test_every_stream_ends_once_with_its_outcome_under_load(tmp_path: Path) -> None:
    words = " ".join(f"w{i}" for i in range(30))
    config = {
        "models": [
            {
                "name": "storm",
                "targets": [{"provider": "mock", "options": {"text": words, "chunk_delay": 0.005}}],
            }
        ]
    }
    rng = random.Random(7)
    plan = [rng.random() < 1 / 3 for _ in range(STREAMS)]
    async with run_gateway(config, tmp_path) as gw:
        limit = asyncio.Semaphore(CONCURRENCY)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def bounded(n: int) -> str:
                async with limit:
                    return await _one(session, gw, n, plan[n])

            expected = await asyncio.gather(*(bounded(n) for n in range(STREAMS)))
        for _ in range(200):  # log lines are written as each stream ends; bounded wait for stragglers
            lines = {line["request_id"]: line for line in gw.access_lines()}
            if len(lines) >= STREAMS:
                break
            await asyncio.sleep(0.05)
        outcomes = {n: lines.get(f"storm-{n}", {}).get("outcome") for n in range(STREAMS)}
        assert [outcomes[n] for n in range(STREAMS)] == expected
        assert "Traceback" not in gw.log()
