"""The benchmark: direct-to-upstream vs through llmrelay (one or more configs, optionally LiteLLM) in ONE run.

    .venv/bin/python bench/run.py            # full run, a few minutes
    .venv/bin/python bench/run.py --quick    # smoke run, about a minute
    .venv/bin/python bench/run.py --variant base=bench/variants/baseline.yaml \\
        --variant noretry=bench/variants/no-retries.yaml     # a policy's price, in CPU µs per request
    .venv/bin/python bench/run.py --litellm /tmp/litellm-venv/bin

Each leg runs the same scenarios: plain calls open loop at each ``--rates`` and closed loop with 64
in flight; streams (a role-only event, then 20 content chunks ``--chunk-delay-ms`` apart) closed
loop with 64 in flight and open loop at ``--stream-rate``, timing the first text (TTFT). The gateway's
CPU per 1,000 calls and streams is read from ``/proc`` around each phase.

Cores (2 on the reference machine): the gateway under test gets core 0 alone; the fake upstream and
this load generator share core 1 in every scenario, so "direct" and "through" differ only by the
gateway hop. Variants run one after another against the same upstream. Every process started here
is ended by PID in ``finally``; only 127.0.0.1 is targeted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import RequestHeaders, closed_loop, open_loop
from processes import cpu_seconds, free_port, pinned, process, rss_mb
from report import report
from variants import Variant, load_all

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CONCURRENCY = 64


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
    url: str,
    pid: int | None,
    *,
    rates: list[int],
    stream_rate: float,
    seconds: float,
    headers: RequestHeaders,
) -> dict[str, Any]:
    """Every scenario against one leg; with ``pid``, that process's CPU per 1,000 calls per phase."""
    endpoint = url + "/v1/chat/completions"
    out: dict[str, Any] = {}
    if pid:  # warm-up, not measured: lazy imports, first connections, caches
        await closed_loop(endpoint, concurrency=8, seconds=min(1.0, seconds / 3), headers=headers)
        await closed_loop(
            endpoint, concurrency=8, seconds=min(1.0, seconds / 3), stream=True, headers=headers
        )

    async def phase(key: str, run: Any) -> None:
        before = cpu_seconds(pid) if pid else 0.0
        summary = (await run).summary()
        if pid:
            done = max(1, summary["requests"] - summary["errors"])
            summary["cpu_s_per_1000"] = (cpu_seconds(pid) - before) / done * 1000
        out[key] = summary

    for rate in rates:
        await phase(f"open_{rate}", open_loop(endpoint, rate=rate, seconds=seconds, headers=headers))
    await phase("max", closed_loop(endpoint, concurrency=CONCURRENCY, seconds=seconds, headers=headers))
    await phase(
        "stream_max",
        closed_loop(endpoint, concurrency=CONCURRENCY, seconds=seconds, stream=True, headers=headers),
    )
    await phase(
        f"stream_{stream_rate:g}",
        open_loop(endpoint, rate=stream_rate, seconds=seconds, stream=True, headers=headers),
    )
    if pid:
        out["rss_mb"] = rss_mb(pid)
    return out


def run_gateway(variant: Variant, up_port: int, tmp: Path, measure_args: dict[str, Any]) -> dict[str, Any]:
    import uvloop

    home = tmp / variant.name
    home.mkdir()
    config = home / "llmrelay.json"  # JSON is YAML: llmrelay loads it and resolves ${BENCH_UPSTREAM_BASE}
    config.write_text(json.dumps(variant.config))
    env = {
        **os.environ,
        "BENCH_UPSTREAM_BASE": f"http://127.0.0.1:{up_port}/v1",
        "LLMRELAY_HOME": str(home),
    }
    port = free_port()
    argv = pinned(
        0, [str(BIN / "llmrelay"), "serve", "-c", str(config), "--port", str(port), "--workers", "1"]
    )
    print(f"# {variant.name}: {' '.join(argv)}", file=sys.stderr)
    with process(argv, port, home / "gateway.log", env) as pid:
        return uvloop.run(
            measure(f"http://127.0.0.1:{port}", pid, headers=RequestHeaders(variant.headers), **measure_args)
        )


def run_litellm(bindir: Path, up_port: int, tmp: Path, measure_args: dict[str, Any]) -> dict[str, Any]:
    import uvloop

    env = {
        **os.environ,
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network here
        # the load generator sends no key, like the other columns
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    port = free_port()
    argv = pinned(
        0,
        [
            str(bindir / "litellm"),
            "--config",
            str(litellm_config(up_port, tmp)),
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
    )
    with process(argv, port, tmp / "litellm.log", env) as pid:
        return uvloop.run(measure(f"http://127.0.0.1:{port}", pid, headers=RequestHeaders(), **measure_args))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (3 s per phase)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per phase [10]")
    parser.add_argument("--rates", default="200,500", help="open-loop arrival rates of plain calls (req/s)")
    parser.add_argument("--stream-rate", type=float, default=50.0, help="open-loop arrival rate of streams")
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=5.0, help="delay before each content chunk")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=CONFIG.yaml",
        help="a gateway config to measure (repeatable); default: llmrelay=bench/variants/baseline.yaml",
    )
    parser.add_argument("--litellm", type=Path, default=None, help="bin dir of a venv with litellm[proxy]")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="directory for the results files")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    rates = [int(r) for r in args.rates.split(",")]
    try:
        variants = load_all(args.variant)
    except ValueError as err:
        raise SystemExit(f"run.py: {err}") from err
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})

    import uvloop

    measure_args: dict[str, Any] = {"rates": rates, "stream_rate": args.stream_rate, "seconds": seconds}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="llmrelay-bench-") as tmpdir:
        tmp = Path(tmpdir)
        up_port = free_port()
        upstream_argv = pinned(
            1,
            [
                sys.executable,
                str(HERE / "fake_upstream.py"),
                "--port",
                str(up_port),
                "--chunks",
                str(args.chunks),
                "--chunk-delay",
                str(args.chunk_delay_ms / 1000),
            ],
        )
        with process(upstream_argv, up_port, tmp / "upstream.log"):
            print("# direct", file=sys.stderr)
            results["direct"] = uvloop.run(
                measure(f"http://127.0.0.1:{up_port}", None, headers=RequestHeaders(), **measure_args)
            )
            for variant in variants:
                results[variant.name] = run_gateway(variant, up_port, tmp, measure_args)
            if args.litellm:
                results["litellm"] = run_litellm(args.litellm, up_port, tmp, measure_args)
    table = report(results, rates, args.stream_rate)
    print(table)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{stamp}.json"
    meta = {
        "seconds": seconds,
        "rates": rates,
        "stream_rate": args.stream_rate,
        "chunks": args.chunks,
        "chunk_delay_ms": args.chunk_delay_ms,
        "variants": {v.name: {"config": v.config, "headers": v.headers} for v in variants},
    }
    out.write_text(json.dumps({**meta, "results": results}, indent=2))
    (args.out / f"{stamp}.txt").write_text(table + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
