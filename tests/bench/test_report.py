"""bench/report.py: the run's table, in particular the per-variant CPU difference in µs."""

from __future__ import annotations

from typing import Any

from bench.report import cpu_delta, cpu_us_per_request, report

RESULTS: dict[str, dict[str, Any]] = {
    "direct": {"open_500": {"p50_ms": 0.5, "p99_ms": 1.0, "errors": 0}, "max": {"rate": 4000.0}},
    "base": {
        "open_500": {"p50_ms": 1.0, "p99_ms": 2.0, "errors": 0, "cpu_s_per_1000": 0.700},
        "rss_mb": 50.0,
    },
    "idem": {
        "open_500": {"p50_ms": 1.5, "p99_ms": 3.0, "errors": 0, "cpu_s_per_1000": 0.950},
        "rss_mb": 52.0,
    },
}


def test_cpu_per_request_in_microseconds_and_difference_to_the_first_variant() -> None:
    assert cpu_us_per_request(RESULTS, "base", "open_500") == 700.0
    assert cpu_delta(RESULTS, "base", "open_500")("idem") == 250.0


def test_table_has_a_column_per_leg_and_the_delta_row_for_later_variants() -> None:
    table = report(RESULTS, [500], 50.0)
    header, *rows = table.splitlines()
    assert header.split() == ["scenario", "direct", "base", "idem"]
    delta = next(r for r in rows if r.startswith("CPU µs Δ vs base req @500/s"))
    assert delta.split()[-3:] == ["-", "-", "+250"]
    added = next(r for r in rows if r.startswith("added p50 @500/s"))
    assert added.split()[-3:] == ["-", "+0.50", "+1.00"]
    # figures a leg does not have (streams here) show as "-", not as an error
    assert next(r for r in rows if r.startswith("max streams/s")).split()[-3:] == ["-", "-", "-"]
