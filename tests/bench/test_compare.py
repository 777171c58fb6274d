"""bench/compare.py: the regression report between two benchmark results files (pure parts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench.compare import Row, better, compare, figures, main, rename_column, render


def run_results(
    *, through_rate: float, through_p99: float, cpu: float, extra: bool = False
) -> dict[str, Any]:
    """A results file as bench/run.py writes it, cut down to a few figures."""
    llmrelay: dict[str, Any] = {
        "open_500": {
            "requests": 5000,
            "errors": 0,
            "p50_ms": 1.0,
            "p99_ms": through_p99,
            "cpu_s_per_1000": cpu,
        },
        "max": {"requests": 20000, "errors": 0, "rate": through_rate},
        "rss_mb": 50.0,
    }
    if extra:
        llmrelay["stream_closed"] = {"rate": 300.0, "cpu_s_per_1000": 2.0}
    return {
        "seconds": 10.0,
        "rates": [500],
        "results": {
            "direct": {
                "open_500": {"requests": 5000, "errors": 0, "p50_ms": 0.5, "p99_ms": 1.0},
                "max": {"requests": 40000, "errors": 0, "rate": 4000.0},
            },
            "llmrelay": llmrelay,
        },
    }


def by_name(rows: list[Row]) -> dict[str, Row]:
    return {row.name: row for row in rows}


def test_run_results_flatten_to_named_figures_with_derived_ones() -> None:
    figs = figures(run_results(through_rate=2000.0, through_p99=3.0, cpu=0.7))
    assert figs["llmrelay max rate"] == 2000.0
    assert figs["llmrelay open_500 p99_ms"] == 3.0
    assert figs["llmrelay rss_mb"] == 50.0
    # against the direct leg of the same run: what survives a noisy machine
    assert figs["llmrelay max rate/direct"] == pytest.approx(0.5)
    assert figs["llmrelay open_500 added_p99_ms"] == pytest.approx(2.0)
    assert "direct max rate/direct" not in figs


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llmrelay max rate", "higher"),
        ("llmrelay max rate/direct", "higher"),
        ("gateway max rps_ok", "higher"),
        ("llmrelay open_500 p99_ms", "lower"),
        ("llmrelay open_500 added_p99_ms", "lower"),
        ("llmrelay open_500 cpu_s_per_1000", "lower"),
        ("llmrelay open_500 errors", "lower"),
        ("llmrelay rss_mb", "lower"),
        ("gateway rss_after_mib", "lower"),
        ("gateway startup_s", "lower"),
        ("llmrelay open_500 requests", None),
    ],
)
def test_direction_of_better(name: str, expected: str | None) -> None:
    assert better(name) == expected


def test_worse_marks_the_bad_direction_only_past_the_threshold() -> None:
    old = figures(run_results(through_rate=2000.0, through_p99=3.0, cpu=0.70))
    # throughput -20% (worse), p99 -50% (better), CPU +5% (within the threshold)
    new = figures(run_results(through_rate=1600.0, through_p99=1.5, cpu=0.735))
    rows = by_name(compare(old, new, threshold=0.10))
    assert rows["llmrelay max rate"].worse
    assert rows["llmrelay max rate"].ratio == pytest.approx(0.8)
    assert not rows["llmrelay open_500 p99_ms"].worse
    assert not rows["llmrelay open_500 cpu_s_per_1000"].worse
    assert rows["llmrelay open_500 cpu_s_per_1000"].ratio == pytest.approx(1.05)
    # CPU +20% is worse; throughput +20% is not
    rows = by_name(
        compare(old, figures(run_results(through_rate=2400.0, through_p99=3.0, cpu=0.84)), threshold=0.10)
    )
    assert rows["llmrelay open_500 cpu_s_per_1000"].worse
    assert not rows["llmrelay max rate"].worse


def test_errors_from_zero_are_worse_and_have_no_ratio() -> None:
    rows = by_name(compare({"x open_500 errors": 0.0}, {"x open_500 errors": 3.0}, threshold=0.10))
    assert rows["x open_500 errors"].ratio is None
    assert rows["x open_500 errors"].worse


def test_figures_missing_on_one_side_are_listed_without_ratio() -> None:
    old = figures(run_results(through_rate=2000.0, through_p99=3.0, cpu=0.7))
    new = figures(run_results(through_rate=2000.0, through_p99=3.0, cpu=0.7, extra=True))
    del new["llmrelay rss_mb"]
    rows = by_name(compare(old, new, threshold=0.10))
    assert rows["llmrelay rss_mb"].new is None
    assert rows["llmrelay rss_mb"].ratio is None
    assert not rows["llmrelay rss_mb"].worse
    assert rows["llmrelay stream_closed rate"].old is None
    assert rows["llmrelay stream_closed rate"].new == 300.0
    table = render(list(rows.values()), threshold=0.10)
    rss_line = next(line for line in table.splitlines() if line.startswith("llmrelay rss_mb"))
    assert "50" in rss_line
    assert "-" in rss_line.split("50", 1)[1]


def test_render_shows_old_new_ratio_and_marker() -> None:
    rows = compare(
        {"gw max rate": 1000.0, "gw open_500 p50_ms": 1.0}, {"gw max rate": 500.0, "gw open_500 p50_ms": 1.0}
    )
    table = render(rows, threshold=0.10)
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    assert "0.50" in lines["gw max rate"]
    assert "WORSE" in lines["gw max rate"]
    assert "WORSE" not in lines["gw open_500 p50_ms"]
    assert "1.00" in lines["gw open_500 p50_ms"]


def reference_results(gateway_rps: float, ttft_p50: float) -> dict[str, Any]:
    """A results.json of the reference harness, cut down."""

    def stream(ttft: float) -> dict[str, Any]:
        return {
            "achieved_rps": 49.5,
            "errors": {},
            "ttfb_ms": {"p50": 5.0, "p99": 8.0},
            "ttft_ms": {"p50": ttft, "p99": ttft + 2},
            "latency_ms": {"p50": 120.0, "p99": 125.0},
        }

    return {
        "meta": {"rates_run": [200.0]},
        "direct": {
            "max": {"rps_ok": 20000.0, "lat_p50_ms": 2.0, "lat_p99_ms": 4.0, "errors_total": 0},
            "open_200": {
                "achieved_rps": 200.0,
                "stream": False,
                "errors": {},
                "latency_ms": {"p50": 0.5, "p90": 1.0, "p99": 1.5},
            },
            "stream": stream(5.5),
        },
        "gateway": {
            "startup_s": 0.5,
            "rss_idle_mib": 47.0,
            "rss_after_mib": 55.0,
            "cpu_per_1k": {"open 200/s": 1.1, "streaming open 50/s": 4.3},
            "max": {"rps_ok": gateway_rps, "lat_p50_ms": 20.0, "lat_p99_ms": 40.0, "errors_total": 0},
            "open_200": {
                "achieved_rps": 200.0,
                "stream": False,
                "errors": {"timeout": 2},
                "latency_ms": {"p50": 1.5, "p90": 2.0, "p99": 3.5},
            },
            "stream": stream(ttft_p50),
        },
    }


def test_reference_harness_results_are_detected_by_shape() -> None:
    figs = figures(reference_results(2000.0, 7.0))
    assert figs["gateway max rps_ok"] == 2000.0
    assert figs["gateway max rps_ok/direct"] == pytest.approx(0.1)
    assert figs["gateway open_200 p99_ms"] == 3.5
    assert figs["gateway open_200 errors"] == 2
    assert figs["gateway stream ttft_p50_ms"] == 7.0
    assert figs["gateway stream added_ttft_p50_ms"] == pytest.approx(1.5)
    assert figs["gateway cpu_s_per_1000 open 200/s"] == 1.1
    assert figs["gateway rss_after_mib"] == 55.0
    rows = by_name(compare(figs, figures(reference_results(1500.0, 7.0))))
    assert rows["gateway max rps_ok"].worse


def test_unknown_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="neither"):
        figures({"something": 1})


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_main_reports_and_exits_zero_even_when_worse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path, "old.json", run_results(through_rate=2000.0, through_p99=3.0, cpu=0.7))
    new = write(tmp_path, "new.json", run_results(through_rate=1000.0, through_p99=3.0, cpu=0.7))
    assert main([old, new]) == 0
    out = capsys.readouterr().out
    assert "llmrelay max rate" in out
    assert "WORSE" in out
    assert main([old, new, "--fail-over", "0.10"]) == 1
    assert main([old, old, "--fail-over", "0.10"]) == 0


def test_main_unreadable_file_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", run_results(through_rate=2000.0, through_p99=3.0, cpu=0.7))
    (tmp_path / "bad.json").write_text("{not json")
    assert main([good, str(tmp_path / "missing.json")]) == 2
    assert main([good, str(tmp_path / "bad.json")]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_column_rename_lines_up_differently_named_variants() -> None:
    old = figures(run_results(through_rate=2000.0, through_p99=3.0, cpu=0.7))
    renamed = rename_column(old, "llmrelay", "base")
    assert renamed["base max rate"] == 2000.0
    assert "llmrelay max rate" not in renamed
    assert renamed["direct max rate"] == old["direct max rate"]


def test_derived_figures_follow_their_source() -> None:
    names = list(figures(run_results(through_rate=2000.0, through_p99=3.0, cpu=0.7)))
    assert names[names.index("llmrelay max rate") + 1] == "llmrelay max rate/direct"
    assert names[names.index("llmrelay open_500 p99_ms") + 1] == "llmrelay open_500 added_p99_ms"
