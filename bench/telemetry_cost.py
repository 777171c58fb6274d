"""CPU per call of the telemetry the server does on every request, measured in isolation.

    .venv/bin/python bench/telemetry_cost.py            # one process
    .venv/bin/python bench/telemetry_cost.py --multiprocess   # as a worker of `serve --workers N`

What one finished call costs (its :class:`RequestRecord`, the access-log line written through a
real ``logging`` handler to a temporary file, the Prometheus series), and what one streamed chunk costs (the
stream timer's ``on_chunk``), in µs of CPU time (``time.process_time``), best of five rounds. The
end-to-end figure (``bench/run.py`` with the ``telemetry-off`` variant) includes these; on a shared
machine its noise is larger than they are, which is why this exists.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def per_call(fn: Any, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - started) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--multiprocess", action="store_true")
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    if not args.multiprocess:
        measure(None, args.n)
        return
    with tempfile.TemporaryDirectory(prefix="llmrelay-bench-metrics-") as shared:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared  # before prometheus_client is imported
        measure(shared, args.n)


def measure(shared: str | None, n: int) -> None:

    from llmrelay.clock import SystemClock
    from llmrelay.server.access_log import AccessLog
    from llmrelay.stores.rates import Decision
    from llmrelay.telemetry.metrics import RequestRecord, StreamTimer
    from llmrelay.telemetry.prometheus import PrometheusMetrics
    from llmrelay.types import ChatChunk, Usage

    logger = logging.getLogger("bench.access")
    logger.propagate = False
    sink = tempfile.TemporaryFile("w")  # noqa: SIM115 - a real file, as the server's stderr is in the bench
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    access = AccessLog(logger)
    metrics = PrometheusMetrics(tag_labels=["feature"], multiprocess_dir=shared)
    usage = Usage(input_tokens=120, output_tokens=40, cached_input_tokens=64)
    clock = SystemClock()

    def record() -> RequestRecord:
        return RequestRecord(
            request_id="0123456789abcdef0123456789abcdef",
            route="/v1/chat/completions",
            status=200,
            seconds=0.0123,
            model="bench",
            alias="bench",
            key_id="static_app",
            team="search",
            tags={"team": "search", "feature": "chat"},
            target="openai/bench-model",
            provider="openai",
            usage=usage,
            cost=0.00042,
            attempts=1,
            overhead=0.00021,
        )

    sample = record()

    def call() -> None:
        r = record()
        access.record(r)
        metrics.request(r)

    results = {
        "record (build the RequestRecord)": per_call(record, n),
        "access log line": per_call(lambda: access.record(sample), n),
        "metrics.request (unary)": per_call(lambda: metrics.request(sample), n),
        "one call: record + log + metrics": per_call(call, n),
    }
    timer = StreamTimer(clock.now)
    chunk = ChatChunk(text="x")
    results["stream chunk: StreamTimer.on_chunk"] = per_call(lambda: timer.on_chunk(chunk), n * 10)
    times = timer.times()
    streamed = msgspec.structs.replace(sample, stream=True, ttft=0.2, stream_times=times)
    results["metrics.request (stream end)"] = per_call(lambda: metrics.request(streamed), n)
    tiered = msgspec.structs.replace(
        sample,
        tier="pro",
        request_limit=Decision(True, 600, 540, 6.0),
        token_limit=Decision(True, 200_000, 190_000, 3.0),
    )
    results["metrics.request (under a tier: + headroom)"] = per_call(lambda: metrics.request(tiered), n)
    mode = "multiprocess" if shared else "one process"
    print(f"telemetry CPU per event ({mode}), µs, best of 5 x {n}:")
    for name, micros in results.items():
        print(f"  {name:<40} {micros:7.2f}")


if __name__ == "__main__":
    main()
