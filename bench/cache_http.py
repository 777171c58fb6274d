"""Cache hits through the real server: ``llmrelay serve`` with a mock upstream of 100 ms latency,
exact and semantic hits timed one at a time from the client (p50 / p99 ms; a miss is ~100 ms).

    .venv/bin/python bench/cache_http.py --requests 300      # needs the `semantic` extra
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.gateway import run_gateway

CONFIG = {
    "models": [
        {
            "name": "exact",
            "targets": [{"provider": "mock", "options": {"latency": 0.1}}],
            "cache": {"ttl": 3600},
        },
        {
            "name": "semantic",
            "targets": [{"provider": "mock", "options": {"latency": 0.1}}],
            "cache": {"ttl": 3600, "semantic": {}},
        },
    ]
}


async def timed(session: aiohttp.ClientSession, url: str, model: str, text: str) -> tuple[float, str]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    started = time.perf_counter()
    async with session.post(url + "/v1/chat/completions", json=body) as response:
        await response.read()
        return (time.perf_counter() - started) * 1000, response.headers.get("x-llmrelay-cache", "")


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    return f"{name:14} p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with run_gateway(CONFIG, Path(tmp)) as gateway, aiohttp.ClientSession() as session:
            url = gateway.url
            miss, _ = await timed(session, url, "exact", "How do I reset my account password?")
            await timed(session, url, "semantic", "How do I reset my account password?")
            exact, semantic = [], []
            for _ in range(args.requests):
                ms, outcome = await timed(session, url, "exact", "How do I reset my account password?")
                assert outcome == "hit", outcome
                exact.append(ms)
                ms, outcome = await timed(
                    session, url, "semantic", "How can I reset the password of my account?"
                )
                assert outcome.startswith("semantic-hit"), outcome
                semantic.append(ms)
    print(f"first call (miss, 100 ms upstream): {miss:.1f} ms")
    print(summary("exact hit", exact))
    print(summary("semantic hit", semantic))


if __name__ == "__main__":
    asyncio.run(main())
