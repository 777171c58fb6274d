"""The benchmark's table: one column per leg (direct, each gateway variant, LiteLLM), one row per figure.

Pure: a results mapping in, text out. Latency is also shown as *added* over the direct leg of the
same run, throughput as a fraction of it, and each variant's gateway CPU per request as a difference
in µs against the first variant: that difference is a policy's price when the variants differ by
one policy (``bench/variants/``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

Results = Mapping[str, Mapping[str, Any]]
NAN = float("nan")


def figure(results: Results, column: str, scenario: str, metric: str) -> float:
    value = results.get(column, {}).get(scenario, {})
    value = value.get(metric, NAN) if isinstance(value, Mapping) else NAN
    return float(value) if isinstance(value, int | float) else NAN


def cpu_us_per_request(results: Results, column: str, scenario: str) -> float:
    """Gateway CPU per request in µs (``cpu_s_per_1000`` s per 1,000 requests = ms per request)."""
    return figure(results, column, scenario, "cpu_s_per_1000") * 1000


def cpu_scenarios(rates: list[int], stream_rate: float) -> list[tuple[str, str]]:
    """(scenario key, label) of every phase whose gateway CPU is measured."""
    out = [(f"open_{rate}", f"req @{rate}/s") for rate in rates]
    out += [("max", "req closed 64"), ("stream_max", "stream closed 64")]
    out.append((f"stream_{stream_rate:g}", f"stream @{stream_rate:g}/s"))
    return out


def report(results: Results, rates: list[int], stream_rate: float) -> str:
    columns = list(results)
    gateways = [c for c in columns if c != "direct"]
    width = max([14] + [len(c) + 2 for c in columns])
    lines = [f"{'scenario':<36}" + "".join(f"{c:>{width}}" for c in columns)]

    def row(
        label: str, value: Callable[[str], float], fmt: str = ".2f", only: list[str] | None = None
    ) -> None:
        cells = []
        for column in columns:
            v = value(column) if only is None or column in only else NAN
            cells.append("-" if math.isnan(v) else f"{v:{fmt}}")
        lines.append(f"{label:<36}" + "".join(f"{cell:>{width}}" for cell in cells))

    def get(scenario: str, metric: str) -> Callable[[str], float]:
        return lambda c: figure(results, c, scenario, metric)

    def added(scenario: str, metric: str) -> Callable[[str], float]:
        return lambda c: figure(results, c, scenario, metric) - figure(results, "direct", scenario, metric)

    def ratio(scenario: str) -> Callable[[str], float]:
        return lambda c: figure(results, c, scenario, "rate") / figure(results, "direct", scenario, "rate")

    for rate in rates:
        key = f"open_{rate}"
        row(f"p50 @{rate}/s (ms)", get(key, "p50_ms"))
        row(f"p99 @{rate}/s (ms)", get(key, "p99_ms"))
        row(f"added p50 @{rate}/s (ms)", added(key, "p50_ms"), "+.2f", gateways)
        row(f"added p99 @{rate}/s (ms)", added(key, "p99_ms"), "+.2f", gateways)
        row(f"errors @{rate}/s", get(key, "errors"), ".0f")
    row("max req/s (64 conc.)", get("max", "rate"), ".0f")
    row("max ratio vs direct", ratio("max"), ".2f", gateways)
    row("max streams/s (64 conc.)", get("stream_max", "rate"), ".0f")
    row("streams ratio vs direct", ratio("stream_max"), ".2f", gateways)
    row("errors streams closed", get("stream_max", "errors"), ".0f")
    skey = f"stream_{stream_rate:g}"
    row(f"stream TTFB p50 @{stream_rate:g}/s (ms)", get(skey, "ttfb_p50_ms"))
    for p in ("p50", "p99"):
        row(f"stream TTFT {p} @{stream_rate:g}/s (ms)", get(skey, f"ttft_{p}_ms"))
    for p in ("p50", "p99"):
        row(f"added TTFT {p} (ms)", added(skey, f"ttft_{p}_ms"), "+.2f", gateways)
    row(f"errors streams @{stream_rate:g}/s", get(skey, "errors"), ".0f")
    for key, label in cpu_scenarios(rates, stream_rate):
        row(f"CPU s/1000 {label}", get(key, "cpu_s_per_1000"), ".3f", gateways)
    if len(gateways) > 1:
        first = gateways[0]
        for key, label in cpu_scenarios(rates, stream_rate):
            row(f"CPU µs Δ vs {first[:12]} {label}", cpu_delta(results, first, key), "+.0f", gateways[1:])
    row("RSS after load (MB)", lambda c: _rss(results, c), ".0f", gateways)
    return "\n".join(lines)


def cpu_delta(results: Results, first: str, scenario: str) -> Callable[[str], float]:
    """A column's gateway CPU per request minus the first variant's, in µs (a policy's price)."""
    return lambda c: cpu_us_per_request(results, c, scenario) - cpu_us_per_request(results, first, scenario)


def _rss(results: Results, column: str) -> float:
    value = results.get(column, {}).get("rss_mb", NAN)
    return float(value) if isinstance(value, int | float) else NAN
