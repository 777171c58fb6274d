"""Interleaved A/B: two gateway configs running side by side, loaded in alternation.

    .venv/bin/python bench/ab.py bench/variants/telemetry-off.yaml bench/variants/baseline.yaml

``run.py`` measures variants one after another, so on a busy machine a drift in the background
load between them reads as a difference between configs. Here both gateways run at once (each on
core 0, idle while the other is loaded) and get short closed-loop bursts in turn, A B B A A B ...,
for ``--rounds``; each burst's CPU per call is read from ``/proc`` and the medians are compared,
for plain calls and for streams. Drift then hits both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import RequestHeaders, closed_loop
from processes import cpu_seconds, free_port, pinned, process
from variants import load

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


async def burst(url: str, pid: int, *, stream: bool, seconds: float) -> float:
    before = cpu_seconds(pid)
    result = await closed_loop(
        url + "/v1/chat/completions",
        concurrency=32,
        seconds=seconds,
        stream=stream,
        headers=RequestHeaders({}),
    )
    done = max(1, result.summary()["requests"] - result.summary()["errors"])
    return (cpu_seconds(pid) - before) / done * 1e6


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    variants = [load(f"a={args.a}"), load(f"b={args.b}")]
    with tempfile.TemporaryDirectory(prefix="llmrelay-ab-") as tmpdir, contextlib.ExitStack() as stack:
        tmp = Path(tmpdir)
        up_port = free_port()
        upstream = pinned(1, [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(up_port)])
        stack.enter_context(process(upstream, up_port, tmp / "upstream.log"))
        gateways = []
        for variant in variants:
            home = tmp / variant.name
            home.mkdir()
            (home / "llmrelay.json").write_text(json.dumps(variant.config))
            env = {
                **os.environ,
                "BENCH_UPSTREAM_BASE": f"http://127.0.0.1:{up_port}/v1",
                "LLMRELAY_HOME": str(home),
            }
            port = free_port()
            argv = pinned(
                0, [str(BIN / "llmrelay"), "serve", "-c", str(home / "llmrelay.json"), "--port", str(port)]
            )
            pid = stack.enter_context(process(argv, port, home / "gateway.log", env))
            gateways.append((f"http://127.0.0.1:{port}", pid))
        for stream in (False, True):
            samples: dict[int, list[float]] = {0: [], 1: []}
            for i in range(args.rounds):
                order = (0, 1) if i % 2 == 0 else (1, 0)
                for side in order:
                    url, pid = gateways[side]
                    samples[side].append(uvloop.run(burst(url, pid, stream=stream, seconds=args.seconds)))
            a, b = (statistics.median(samples[s][1:]) for s in (0, 1))  # the first round warms up
            kind = "stream" if stream else "call"
            print(
                f"CPU µs per {kind}: a {a:.0f}, b {b:.0f}, b - a {b - a:+.0f}  (median of {args.rounds - 1})"
            )


if __name__ == "__main__":
    main()
