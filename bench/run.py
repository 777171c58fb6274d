"""The benchmark: direct-to-upstream vs through llmrelay (and optionally LiteLLM) in ONE run.

    .venv/bin/python bench/run.py            # full run, a few minutes
    .venv/bin/python bench/run.py --quick    # smoke run, under a minute
    .venv/bin/python bench/run.py --litellm /tmp/litellm-venv/bin

Cores (2 on the reference machine): the gateway under test gets core 0 alone; the fake upstream and
this load generator share core 1 in every scenario, so "direct" and "through" differ only by the
gateway hop. Every process started here is ended by PID in ``finally``; only 127.0.0.1 is targeted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import closed_loop, open_loop, time_to_first_byte

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if os.cpu_count() and os.cpu_count() > 1 else argv  # type: ignore[operator]


@contextmanager
def process(argv: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Start ``argv``, wait until ``port`` accepts connections, yield its PID, end it by PID."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited early; see {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"{argv} did not start listening; see {log}")
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gateway_config(upstream_port: int, tmp: Path) -> Path:
    config = {
        "state": {"url": f"sqlite:///{tmp / 'bench.db'}"},
        "models": [
            {
                "name": "bench",
                "targets": [
                    {
                        "provider": "openai",
                        "model": "bench-model",
                        "api_key": "sk-bench",
                        "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                    }
                ],
            }
        ],
    }
    path = tmp / "llmrelay.json"
    path.write_text(json.dumps(config))
    return path


def litellm_config(upstream_port: int, tmp: Path) -> Path:
    path = tmp / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench-model\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-bench\n"
    )
    return path


async def measure(
    url: str, pid: int | None, *, rates: list[int], seconds: float, quick: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rate in rates:
        before = cpu_seconds(pid) if pid else 0.0
        result = await open_loop(url + "/v1/chat/completions", rate=rate, seconds=seconds)
        summary = result.summary()
        if pid:
            summary["cpu_s_per_1000"] = (cpu_seconds(pid) - before) / max(1, summary["requests"]) * 1000
        out[f"open_{rate}"] = summary
    out["max"] = (await closed_loop(url + "/v1/chat/completions", concurrency=64, seconds=seconds)).summary()
    out["ttfb"] = (
        await time_to_first_byte(url + "/v1/chat/completions", count=50 if quick else 300)
    ).summary()
    if pid:
        out["rss_mb"] = rss_mb(pid)
    return out


def report(results: dict[str, dict[str, Any]], rates: list[int]) -> str:
    direct = results["direct"]
    lines = [
        f"{'scenario':<24}" + "".join(f"{name:>14}" for name in results),
    ]

    def row(label: str, value: Any) -> None:
        lines.append(f"{label:<24}" + "".join(f"{value(r):>14}" for r in results.values()))

    for rate in rates:
        key = f"open_{rate}"
        row(f"p50 @{rate}/s (ms)", lambda r, k=key: f"{r[k]['p50_ms']:.2f}")
        row(f"p99 @{rate}/s (ms)", lambda r, k=key: f"{r[k]['p99_ms']:.2f}")
        row(f"added p50 @{rate}/s", lambda r, k=key: f"{r[k]['p50_ms'] - direct[k]['p50_ms']:+.2f}")
        row(f"added p99 @{rate}/s", lambda r, k=key: f"{r[k]['p99_ms'] - direct[k]['p99_ms']:+.2f}")
        row(f"errors @{rate}/s", lambda r, k=key: f"{r[k]['errors']}")
    row("max req/s (64 conc.)", lambda r: f"{r['max']['rate']:.0f}")
    row("max ratio vs direct", lambda r: f"{r['max']['rate'] / direct['max']['rate']:.2f}")
    row("stream TTFB p50 (ms)", lambda r: f"{r['ttfb']['p50_ms']:.2f}")
    row("stream TTFB p99 (ms)", lambda r: f"{r['ttfb']['p99_ms']:.2f}")
    top = f"open_{rates[-1]}"
    row(f"CPU s/1000 req @{rates[-1]}/s", lambda r, k=top: f"{r[k].get('cpu_s_per_1000', float('nan')):.3f}")
    row("RSS after load (MB)", lambda r: f"{r.get('rss_mb', float('nan')):.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per scenario")
    parser.add_argument("--rates", default="200,500", help="open-loop arrival rates (req/s)")
    parser.add_argument("--litellm", type=Path, default=None, help="bin dir of a venv with litellm[proxy]")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    rates = [int(r) for r in args.rates.split(",")]
    if os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, {1})

    import uvloop

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="llmrelay-bench-") as tmpdir:
        tmp = Path(tmpdir)
        up_port, gw_port, lt_port = free_port(), free_port(), free_port()
        upstream_argv = pinned(1, [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(up_port)])
        with process(upstream_argv, up_port, tmp / "upstream.log"):
            results["direct"] = uvloop.run(
                measure(f"http://127.0.0.1:{up_port}", None, rates=rates, seconds=seconds, quick=args.quick)
            )
            gateway_argv = pinned(
                0,
                [
                    str(BIN / "llmrelay"),
                    "serve",
                    "-c",
                    str(gateway_config(up_port, tmp)),
                    "--port",
                    str(gw_port),
                ],
            )
            with process(gateway_argv, gw_port, tmp / "gateway.log") as pid:
                results["llmrelay"] = uvloop.run(
                    measure(
                        f"http://127.0.0.1:{gw_port}", pid, rates=rates, seconds=seconds, quick=args.quick
                    )
                )
            if args.litellm:
                env = {
                    **os.environ,
                    "LITELLM_LOG": "ERROR",
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network here
                    # the load generator sends no key, like the other two columns
                    "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
                }
                litellm_argv = pinned(
                    0,
                    [
                        str(args.litellm / "litellm"),
                        "--config",
                        str(litellm_config(up_port, tmp)),
                        "--port",
                        str(lt_port),
                        "--num_workers",
                        "1",
                    ],
                )
                with process(litellm_argv, lt_port, tmp / "litellm.log", env) as pid:
                    results["litellm"] = uvloop.run(
                        measure(
                            f"http://127.0.0.1:{lt_port}", pid, rates=rates, seconds=seconds, quick=args.quick
                        )
                    )
    table = report(results, rates)
    print(table)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = HERE / "results" / f"{stamp}.json"
    out.write_text(json.dumps({"seconds": seconds, "rates": rates, "results": results}, indent=2))
    (HERE / "results" / f"{stamp}.txt").write_text(table + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
