"""The regression report: two benchmark results files side by side, figure by figure.

    .venv/bin/python bench/compare.py bench/results/OLD.json bench/results/NEW.json
    .venv/bin/python bench/compare.py OLD.json NEW.json --fail-over 0.10   # exit 1 past 10% worse

Every change that touches the request path reports this table. It reads the files ``bench/run.py``
writes and, detected by shape, the ``results.json`` of the reference harness (the one with ``meta``,
``direct`` and ``gateway`` at the top). Each figure gets old, new, the ratio new/old and ``WORSE``
when it moved in its bad direction by more than the threshold: throughput falls, latency, CPU,
memory or errors rise. Besides the raw figures it derives the ones that survive a noisy machine:
throughput as a fraction of the direct leg of the same run, and latency added over direct.

It is a report, not a gate: the exit code is 0 unless a file cannot be read (2), or ``--fail-over``
is given and a figure got worse by more than that fraction (1). Standalone on purpose (no imports
from the rest of ``bench/``), so it can compare results from any checkout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Better = Literal["higher", "lower"]
Figures = dict[str, float]

DEFAULT_THRESHOLD = 0.10


def better(name: str) -> Better | None:
    """Which direction is better for a figure, from its name; ``None`` for counts and settings."""
    lowered = name.lower()
    last = lowered.rsplit(" ", 1)[-1]
    if "errors" in lowered:
        return "lower"
    if lowered.endswith("/direct"):
        return "higher"  # only throughput is derived as a fraction of direct
    if any(word in lowered for word in ("cpu", "rss", "_ms", "startup_s")):
        return "lower"
    if last == "rate" or "rps" in last:
        return "higher"
    return None


# ---------------------------------------------------------------- reading results


def figures(data: Mapping[str, Any]) -> Figures:
    """All figures of a results file, flat: ``"<column> <scenario> <metric>" -> value``."""
    if isinstance(data.get("results"), Mapping):
        return _run_figures(data["results"])
    if isinstance(data.get("meta"), Mapping) and isinstance(data.get("gateway"), Mapping):
        return _reference_figures(data)
    raise ValueError("neither a bench/run.py results file nor a reference-harness results.json")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _run_figures(results: Mapping[str, Any]) -> Figures:
    out: Figures = {}
    for column, scenarios in results.items():
        for scenario, metrics in scenarios.items():
            if isinstance(metrics, Mapping):
                _flatten(out, f"{column} {scenario}", metrics)
            elif (value := _number(metrics)) is not None:
                out[f"{column} {scenario}"] = value
    return _with_derived(out)


def _with_derived(raw: Figures) -> Figures:
    """Each figure of a gateway column followed by what it means against the direct leg."""
    direct = {name.split(" ", 1)[1]: value for name, value in raw.items() if name.startswith("direct ")}
    out: Figures = {}
    for name, value in raw.items():
        out[name] = value
        column, rest = name.split(" ", 1)
        if column != "direct" and rest in direct:
            _derive(out, name, value, direct[rest])
    return out


def _flatten(out: Figures, prefix: str, metrics: Mapping[str, Any]) -> None:
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            _flatten(out, f"{prefix} {key}", value)
        elif (number := _number(value)) is not None:
            out[f"{prefix} {key}"] = number


def _derive(out: Figures, name: str, value: float, base: float) -> None:
    """Throughput relative to direct, latency added over direct (same run, same machine state)."""
    head, last = name.rsplit(" ", 1)
    if better(name) == "higher" and base > 0:
        out[f"{name}/direct"] = value / base
    elif last.endswith("_ms") and not last.startswith("max") and "sched" not in last:
        out[f"{head} added_{last}"] = value - base


def _reference_figures(data: Mapping[str, Any]) -> Figures:
    """The reference harness nests percentiles (``latency_ms.p50``) and counts errors by kind."""
    out: Figures = {}
    for column in ("direct", "gateway"):
        side = data.get(column) or {}
        for phase, result in side.items():
            if not isinstance(result, Mapping):
                if (value := _number(result)) is not None:
                    out[f"{column} {phase}"] = value
                continue
            if phase == "cpu_per_1k":
                for label, value in result.items():
                    if (number := _number(value)) is not None:
                        out[f"{column} cpu_s_per_1000 {label}"] = number
                continue
            _reference_phase(out, f"{column} {phase}", result)
    return _with_derived(out)


def _reference_phase(out: Figures, prefix: str, result: Mapping[str, Any]) -> None:
    for key in ("rps_ok", "achieved_rps", "lat_p50_ms", "lat_p99_ms"):
        if (value := _number(result.get(key))) is not None:
            out[f"{prefix} {key}"] = value
    errors = result.get("errors_total", result.get("errors"))
    if isinstance(errors, Mapping):
        out[f"{prefix} errors"] = float(sum(v for v in errors.values() if _number(v) is not None))
    elif (value := _number(errors)) is not None:
        out[f"{prefix} errors"] = value
    streamed = result.get("stream", True) is not False  # plain calls repeat latency as ttfb/ttft
    for key, label in (("latency_ms", "total" if streamed else ""), ("ttfb_ms", "ttfb"), ("ttft_ms", "ttft")):
        if key != "latency_ms" and not streamed:
            continue
        percentiles = result.get(key)
        if not isinstance(percentiles, Mapping):
            continue
        for p in ("p50", "p90", "p99"):
            if (value := _number(percentiles.get(p))) is not None:
                out[f"{prefix} {label + '_' if label else ''}{p}_ms"] = value


def rename_column(figs: Figures, old: str, new: str) -> Figures:
    """The same figures with column ``old`` called ``new`` (to line up differently named variants)."""
    return {(new + name[len(old) :] if name.startswith(old + " ") else name): v for name, v in figs.items()}


def load(path: str | Path) -> Figures:
    """Read and flatten one results file; ``OSError``/``ValueError`` when it cannot be used."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ValueError("not a JSON object")
    return figures(data)


# ---------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Row:
    name: str
    old: float | None
    new: float | None
    ratio: float | None
    worse: bool


def compare(old: Figures, new: Figures, *, threshold: float = DEFAULT_THRESHOLD) -> list[Row]:
    """One row per figure on either side, in the old file's order, then figures only ``new`` has."""
    names = list(old) + [name for name in new if name not in old]
    return [_row(name, old.get(name), new.get(name), threshold) for name in names]


def _row(name: str, old: float | None, new: float | None, threshold: float) -> Row:
    if old is None or new is None or math.isnan(old) or math.isnan(new):
        return Row(name, old, new, None, worse=False)
    ratio = new / old if old > 0 and new >= 0 else None
    return Row(name, old, new, ratio, worse=is_worse(better(name), old, new, threshold))


def is_worse(direction: Better | None, old: float, new: float, threshold: float) -> bool:
    """Moved in the bad direction by more than ``threshold`` of ``|old|``; from 0, by anything."""
    if direction is None:
        return False
    change = new - old if direction == "lower" else old - new
    if old == 0:
        return change > 0
    return change / abs(old) > threshold


def render(rows: Sequence[Row], *, threshold: float = DEFAULT_THRESHOLD) -> str:
    width = max([len("figure")] + [len(row.name) for row in rows]) + 2
    lines = [f"{'figure':<{width}}{'old':>12}{'new':>12}{'new/old':>10}"]
    for row in rows:
        marker = f"  WORSE (>{threshold:.0%})" if row.worse else ""
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        lines.append(f"{row.name:<{width}}{_fmt(row.old):>12}{_fmt(row.new):>12}{ratio:>10}{marker}")
    worse = sum(row.worse for row in rows)
    lines.append("")
    lines.append(
        f"{worse} figure(s) worse by more than {threshold:.0%}; rerun before trusting a change < ~10%."
    )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value == int(value):
        return f"{value:.0f}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old", help="results file before the change")
    parser.add_argument("new", help="results file after the change")
    parser.add_argument(
        "--fail-over",
        type=float,
        default=None,
        metavar="FRACTION",
        help="exit 1 if a figure got worse by more than FRACTION (e.g. 0.10); default: always exit 0",
    )
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="compare the old file's column OLD with the new file's column NEW (repeatable), "
        "e.g. llmrelay=base when the new run named its variants",
    )
    args = parser.parse_args(argv)
    threshold = DEFAULT_THRESHOLD if args.fail_over is None else args.fail_over
    loaded: list[Figures] = []
    for path in (args.old, args.new):
        try:
            loaded.append(load(path))
        except (OSError, ValueError) as err:
            print(f"compare: cannot read {path}: {err}", file=sys.stderr)
            return 2
    for mapping in args.column:
        old_name, sep, new_name = mapping.partition("=")
        if not sep:
            parser.error(f"--column takes OLD=NEW, not {mapping!r}")
        loaded[0] = rename_column(loaded[0], old_name, new_name)
    rows = compare(loaded[0], loaded[1], threshold=threshold)
    print(render(rows, threshold=threshold))
    return 1 if args.fail_over is not None and any(row.worse for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
