"""Load generation for the benchmark: open loop (fixed arrival rate) and closed loop (max throughput).

Open loop schedules request *i* at ``t0 + i / rate`` whatever happened before, and measures latency
from that scheduled time, so a slow server cannot hide its queueing (coordinated omission). Closed
loop runs ``concurrency`` workers back to back. Both send plain calls or SSE streams; for streams
they time three points from the (scheduled) start:

* ``ttfb``: the first body bytes (for OpenAI streams, the role-only first event);
* ``ttft``: the first event carrying text (a non-empty ``content``/``text`` string), i.e. the first
  token a user sees; role-only and empty events do not count;
* the total (``p50_ms`` ...): the end of the stream.

Every run is bounded in count and time and refuses any target outside 127.0.0.0/8. From a shell:
``python bench/loadgen.py URL --seconds 20 --rate 500`` (or ``--closed 64``, ``--stream``), e.g. to
keep a gateway busy while a profiler records it.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

BODY = b'{"model": "bench", "messages": [{"role": "user", "content": "Say something short."}]}'
STREAM_BODY = (
    b'{"model": "bench", "stream": true, "messages": [{"role": "user", "content": "Say something short."}]}'
)
# A non-empty JSON string under "content" (OpenAI) or "text" (Anthropic): the role-only first event
# carries "content": "" and does not match.
_TEXT = re.compile(rb'"(?:content|text)":\s*"[^"]')


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        raise SystemExit(f"refusing to load {host}: the benchmark only targets loopback")


def carries_text(data: bytes) -> bool:
    """Whether SSE bytes received so far hold an event with text in it."""
    return _TEXT.search(data) is not None


class RequestHeaders:
    """Headers for each request; ``{n}`` in a value becomes a per-request number (unique keys, e.g.
    ``Idempotency-Key: bench-{n}``, so every request takes the first-arrival path)."""

    def __init__(self, template: Mapping[str, str] | None = None) -> None:
        self._template = {"content-type": "application/json", **(template or {})}
        self._numbered = any("{n}" in value for value in self._template.values())
        self._count = itertools.count()

    def __call__(self) -> dict[str, str]:
        if not self._numbered:
            return self._template
        n = str(next(self._count))
        return {name: value.replace("{n}", n) for name, value in self._template.items()}


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, to the end of the response
    ttfb: list[float] = field(default_factory=list)  # streams only
    ttft: list[float] = field(default_factory=list)  # streams only
    errors: int = 0
    elapsed: float = 0.0

    def summary(self) -> dict[str, float]:
        n = len(self.latencies)
        out = {
            "requests": n + self.errors,
            "errors": self.errors,
            "rate": n / self.elapsed if self.elapsed else 0.0,
            **percentiles("", self.latencies, (0.50, 0.90, 0.99)),
            "max_ms": max(self.latencies) * 1000 if n else float("nan"),
            "mean_ms": statistics.fmean(self.latencies) * 1000 if n else float("nan"),
        }
        if self.ttft:
            out |= percentiles("ttfb_", self.ttfb, (0.50, 0.99))
            out |= percentiles("ttft_", self.ttft, (0.50, 0.90, 0.99))
        return out


def percentiles(prefix: str, seconds: list[float], points: tuple[float, ...]) -> dict[str, float]:
    ordered = sorted(seconds)
    n = len(ordered)
    return {
        f"{prefix}p{round(p * 100)}_ms": ordered[min(n - 1, int(p * n))] * 1000 if n else float("nan")
        for p in points
    }


async def _one(
    session: aiohttp.ClientSession,
    url: str,
    *,
    stream: bool,
    headers: RequestHeaders,
    result: Result,
    started: float,
) -> None:
    """One call; on success its times (from ``started``) go into ``result``, else it raises."""
    body = STREAM_BODY if stream else BODY
    async with session.post(url, data=body, headers=headers()) as resp:
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}")
        if not stream:
            await resp.read()
            result.latencies.append(time.perf_counter() - started)
            return
        ttfb = ttft = None
        seen = b""
        async for data in resp.content.iter_any():
            if ttft is None:
                now = time.perf_counter()
                ttfb = now - started if ttfb is None else ttfb
                seen += data  # the role event is small; nothing is kept after the first text
                if carries_text(seen):
                    ttft = now - started
                    seen = b""
        if ttfb is None or ttft is None:
            raise RuntimeError("stream carried no text")
        result.latencies.append(time.perf_counter() - started)
        result.ttfb.append(ttfb)
        result.ttft.append(ttft)


async def open_loop(
    url: str, *, rate: float, seconds: float, stream: bool = False, headers: RequestHeaders | None = None
) -> Result:
    """``rate`` requests per second for ``seconds``; latency measured from each scheduled start."""
    check_loopback(url)
    headers = headers or RequestHeaders()
    count = int(rate * seconds)
    result = Result()
    connector = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(connector=connector) as session:
        # warm the connection; its times are not kept
        await _one(session, url, stream=stream, headers=headers, result=Result(), started=0.0)

        async def fire(scheduled: float) -> None:
            try:
                await _one(session, url, stream=stream, headers=headers, result=result, started=scheduled)
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


async def closed_loop(
    url: str,
    *,
    concurrency: int,
    seconds: float,
    stream: bool = False,
    headers: RequestHeaders | None = None,
) -> Result:
    """``concurrency`` workers sending back to back for ``seconds``: the maximum throughput."""
    check_loopback(url)
    headers = headers or RequestHeaders()
    result = Result()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _one(session, url, stream=stream, headers=headers, result=Result(), started=0.0)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                try:
                    await _one(
                        session,
                        url,
                        stream=stream,
                        headers=headers,
                        result=result,
                        started=time.perf_counter(),
                    )
                except Exception:
                    result.errors += 1

        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=seconds + 30)
        result.elapsed = time.perf_counter() - t0
    return result


def main() -> None:
    """Load one URL from the command line (e.g. while a profiler records the gateway)."""
    import argparse
    import json

    import uvloop

    parser = argparse.ArgumentParser(description="Load a loopback chat-completions URL; print a summary.")
    parser.add_argument("url", help="e.g. http://127.0.0.1:4000/v1/chat/completions")
    parser.add_argument("--seconds", type=float, default=10.0)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, default=500.0, help="open loop at this arrival rate [500/s]")
    mode.add_argument("--closed", type=int, metavar="N", help="closed loop with N in flight instead")
    parser.add_argument("--stream", action="store_true", help="SSE streams instead of plain calls")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="{n} numbers it")
    args = parser.parse_args()
    headers = RequestHeaders(dict(h.split(":", 1) for h in args.header))
    if args.closed:
        run = closed_loop(
            args.url, concurrency=args.closed, seconds=args.seconds, stream=args.stream, headers=headers
        )
    else:
        run = open_loop(args.url, rate=args.rate, seconds=args.seconds, stream=args.stream, headers=headers)
    print(json.dumps(uvloop.run(run).summary()))


if __name__ == "__main__":
    main()
