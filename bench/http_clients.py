"""httpx vs aiohttp as the upstream client, against the fake upstream, in one run.

    .venv/bin/python bench/http_clients.py

This measurement chose aiohttp for ``llmrelay.providers.http``: requests/s and CPU per request
of each client alone (no gateway), sequential and with 32 requests in flight. The client runs on
core 0, the fake upstream on core 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import free_port, pinned, process

HERE = Path(__file__).resolve().parent
BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "hi"}]}'
HEADERS = {"content-type": "application/json"}
REQUESTS = 3000


async def drive(call: Callable[[], Awaitable[None]], concurrency: int) -> tuple[float, float]:
    for _ in range(concurrency):
        await call()
    gate = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with gate:
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(REQUESTS)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return REQUESTS / wall, cpu / REQUESTS * 1000


async def with_httpx(url: str, concurrency: int) -> tuple[float, float]:
    import httpx

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:

        async def call() -> None:
            (await client.post(url, content=BODY, headers=HEADERS)).raise_for_status()

        return await drive(call, concurrency)


async def with_aiohttp(url: str, concurrency: int) -> tuple[float, float]:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def call() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as resp:
                resp.raise_for_status()
                await resp.read()

        return await drive(call, concurrency)


def main() -> None:
    import uvloop

    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with process(
        pinned(1, [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port)]),
        port,
        Path("/tmp") / f"llmrelay-bench-upstream-{port}.log",
    ):
        print(f"{'client':<10}{'in flight':>10}{'req/s':>10}{'CPU ms/req':>12}")
        for concurrency in (1, 32):
            for name, run in (("httpx", with_httpx), ("aiohttp", with_aiohttp)):
                rate, cpu = uvloop.run(run(url, concurrency))
                print(f"{name:<10}{concurrency:>10}{rate:>10.0f}{cpu:>12.3f}")


if __name__ == "__main__":
    main()
