"""Load generation for the benchmark: open loop (fixed arrival rate) and closed loop (max throughput).

Open loop schedules request *i* at ``t0 + i / rate`` whatever happened before, and measures latency
from that scheduled time, so a slow server cannot hide its queueing (coordinated omission). Every
run is bounded in count and time and refuses any target outside 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "Say something short."}]}'
STREAM_BODY = (
    b'{"model": "bench", "stream": true, "messages": [{"role": "user", "content": "Say something short."}]}'
)


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        raise SystemExit(f"refusing to load {host}: the benchmark only targets loopback")


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    elapsed: float = 0.0

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        n = len(ordered)

        def pct(p: float) -> float:
            return ordered[min(n - 1, int(p * n))] * 1000 if n else float("nan")

        return {
            "requests": n + self.errors,
            "errors": self.errors,
            "rate": n / self.elapsed if self.elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": ordered[-1] * 1000 if n else float("nan"),
            "mean_ms": statistics.fmean(ordered) * 1000 if n else float("nan"),
        }


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, stream: bool) -> None:
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}")
        if stream:
            async for _ in resp.content.iter_any():
                pass
        else:
            await resp.read()


async def _ttfb(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.post(url, data=STREAM_BODY, headers={"content-type": "application/json"}) as resp:
        line = await resp.content.readline()
        first = time.perf_counter() - started
        if not line.startswith(b"data: "):
            raise RuntimeError("no first data line")
        async for _ in resp.content.iter_any():
            pass
    return first


async def open_loop(url: str, *, rate: float, seconds: float, stream: bool = False) -> Result:
    """``rate`` requests per second for ``seconds``; latency measured from each scheduled start."""
    check_loopback(url)
    count = int(rate * seconds)
    result = Result()
    connector = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _one(session, url, STREAM_BODY if stream else BODY, stream)  # warm the connection

        async def fire(scheduled: float) -> None:
            try:
                await _one(session, url, STREAM_BODY if stream else BODY, stream)
                result.latencies.append(time.perf_counter() - scheduled)
            except Exception:
                result.errors += 1

        t0 = time.perf_counter()
        tasks = []
        for i in range(count):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(fire(scheduled)))
        # A server that cannot keep up leaves requests behind: give them a bounded grace, then count
        # the rest as errors instead of waiting on them (the run stays bounded in time).
        _, late = await asyncio.wait(tasks, timeout=seconds + 10)
        for task in late:
            task.cancel()
        result.errors += len(late)
        result.elapsed = time.perf_counter() - t0
    return result


async def closed_loop(url: str, *, concurrency: int, seconds: float) -> Result:
    """``concurrency`` workers sending back to back for ``seconds``: the maximum throughput."""
    check_loopback(url)
    result = Result()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _one(session, url, BODY, False)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await _one(session, url, BODY, False)
                    result.latencies.append(time.perf_counter() - started)
                except Exception:
                    result.errors += 1

        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=seconds + 30)
        result.elapsed = time.perf_counter() - t0
    return result


async def time_to_first_byte(url: str, *, count: int) -> Result:
    """Sequential streamed calls: time from send to the first ``data:`` line."""
    check_loopback(url)
    result = Result()
    async with aiohttp.ClientSession() as session:
        await _ttfb(session, url)
        t0 = time.perf_counter()
        for _ in range(count):
            try:
                result.latencies.append(await _ttfb(session, url))
            except Exception:
                result.errors += 1
        result.elapsed = time.perf_counter() - t0
    return result
