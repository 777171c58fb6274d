"""CPU per call of OpenTelemetry tracing, exporting over OTLP/HTTP to a loopback sink.

    .venv/bin/python bench/tracing_cost.py

The same ``Relay`` (one ``mock`` alias, no latency) runs N calls without tracing and N calls with
``telemetry.otlp_endpoint`` pointing at a throwaway HTTP server on 127.0.0.1 that accepts every
export; the difference of the process's CPU time per call (the batch exporter's thread included,
flushed before the clock stops) is tracing's price: a call span and an attempt span per call.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmrelay import Relay
from llmrelay.config import load_config


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


async def cpu_per_call(config: dict[str, object], n: int) -> float:
    async with Relay(load_config(config)) as relay:
        for _ in range(200):  # warm-up
            await relay.chat("m", [{"role": "user", "content": "hi"}])
        started = time.process_time()
        for _ in range(n):
            await relay.chat("m", [{"role": "user", "content": "hi"}])
    return (time.process_time() - started) / n * 1e6  # closing flushed the spans


def main() -> None:
    n = 5000
    server = HTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    models = [{"name": "m", "targets": [{"provider": "mock", "model": "mock-1"}]}]
    endpoint = f"http://127.0.0.1:{server.server_port}/v1/traces"
    off = min(asyncio.run(cpu_per_call({"models": models}, n)) for _ in range(3))
    on = min(
        asyncio.run(cpu_per_call({"models": models, "telemetry": {"otlp_endpoint": endpoint}}, n))
        for _ in range(3)
    )
    server.shutdown()
    print(f"CPU per call, µs (best of 3 x {n}): tracing off {off:.1f}, on {on:.1f}, costs {on - off:+.1f}")


if __name__ == "__main__":
    main()
