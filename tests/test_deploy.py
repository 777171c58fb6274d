"""deploy/: the Prometheus rules file is what ``llmrelay alerts rules`` makes of examples/alerts.yaml,
and every metric the Grafana dashboard and the rules query is one the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.stores.rates import Decision
from llmrelay.telemetry.metrics import RequestRecord, StreamTimes
from llmrelay.telemetry.prometheus import PrometheusMetrics
from llmrelay.types import Usage

ROOT = Path(__file__).resolve().parents[1]
METRIC = re.compile(r"\bllmrelay_[a-z_]+\b")


def exported() -> set[str]:
    """Every sample name the gateway exports, each series made to exist once."""
    metrics = PrometheusMetrics()
    times = StreamTimes(first=0.0, last=1.0, gap_counts=(1,) * 12, gap_sum=0.1)
    record = RequestRecord(
        request_id="r",
        route="/v1/chat/completions",
        status=200,
        seconds=0.1,
        alias="a",
        usage=Usage(input_tokens=1, output_tokens=1),
        cost=0.1,
        retries=1,
        fallbacks=1,
        overhead=0.001,
        stream=True,
        ttft=0.05,
        stream_times=times,
        key_id="k",
        tier="pro",
        request_limit=Decision(True, 10, 9, 6.0),
        token_limit=Decision(True, 100, 90, 6.0),
        cache="hit",
    )
    metrics.request(record)
    metrics.request(msgspec.structs.replace(record, status=429, error="rate_limit_exceeded"))
    metrics.budget("key=*/monthly", "k", 1.0, 10.0)
    metrics.upstream_error("t", "openai", "Timeout")
    metrics.circuit("a:t", "closed", "open")
    text = metrics.exposition().decode()
    return set(re.findall(r"^(llmrelay_[a-z_]+)", text, re.MULTILINE))


def test_rules_file_is_the_generated_one() -> None:
    result = CliRunner().invoke(main, ["alerts", "rules", "-c", str(ROOT / "examples" / "alerts.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output == (ROOT / "deploy" / "prometheus-rules.yaml").read_text()


def test_dashboard_and_rules_query_only_exported_metrics() -> None:
    names = exported()
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }
    queried |= set(METRIC.findall((ROOT / "deploy" / "prometheus-rules.yaml").read_text()))
    assert len(queried) >= 12
    assert queried <= names, queried - names
