"""Alert rules over two snapshots, the evaluator's once-per-change delivery, and the rules file."""

from __future__ import annotations

import pytest

from llmrelay.alerts.evaluator import Evaluator
from llmrelay.alerts.prometheus_rules import expression, rules_file
from llmrelay.alerts.rules import AlertRule, AlertsConfig, Snapshot, Webhook, value
from llmrelay.alerts.webhooks import AlertEvent, Deliveries, body_for, signature, verify
from llmrelay.clock import FakeClock
from llmrelay.stores.memory import MemoryKV


def calls(ok: float, failed: float, alias: str = "a") -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    base = {"route": "/v1/chat/completions", "alias": alias, "target": "t", "provider": "openai"}
    return {
        ("llmrelay_requests_total", frozenset({**base, "status_class": "2xx"}.items())): ok,
        ("llmrelay_requests_total", frozenset({**base, "status_class": "5xx"}.items())): failed,
    }


def latency(counts: dict[str, float]) -> Snapshot:
    return {
        ("llmrelay_request_duration_seconds_bucket", frozenset({("alias", "a"), ("le", le)})): n
        for le, n in counts.items()
    }


def rule(kind: str, threshold: float, **more: object) -> AlertRule:
    return AlertRule(name="r", kind=kind, threshold=threshold, **more)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("the_rule", "before", "now", "expected"),
    [
        (rule("error_rate", 0.1), calls(10, 0), calls(14, 6), 0.6),
        (rule("error_rate", 0.1, alias="b"), calls(10, 0), calls(14, 6), None),  # no calls of b
        (rule("error_rate", 0.1, min_requests=20), calls(10, 0), calls(14, 6), None),
        (rule("error_rate", 0.1), calls(10, 5), calls(3, 1), 0.25),  # restarted counters count from 0
        (
            rule("p95_latency", 1),
            latency({"0.1": 0, "1": 0, "+Inf": 0}),
            latency({"0.1": 90, "1": 96, "+Inf": 100}),
            1.0,
        ),
        (rule("p95_latency", 1), {}, latency({"0.1": 95, "1": 100, "+Inf": 100}), 0.1),
        (rule("p95_latency", 1), {}, latency({"0.1": 1, "1": 2, "+Inf": 100}), float("inf")),
        (
            rule("spend", 1),
            {("llmrelay_cost_usd_total", frozenset()): 2.0},
            {("llmrelay_cost_usd_total", frozenset()): 2.5},
            0.5,
        ),
        (rule("circuit_open", 0), {}, {("llmrelay_circuit_open", frozenset({("target", "x")})): 2.0}, 2.0),
    ],
)
def test_rule_values(the_rule: AlertRule, before: Snapshot, now: Snapshot, expected: float | None) -> None:
    got = value(the_rule, before, now)
    assert got == (pytest.approx(expected) if expected is not None else None)


def spent(usd: float) -> Snapshot:
    return {("llmrelay_cost_usd_total", frozenset({("alias", "a")})): usd}


@pytest.mark.parametrize(
    ("older", "before", "now", "expected"),
    [
        (spent(0), spent(2), spent(5), 1.5),  # 2 USD, then 3 USD: +50%
        (spent(0), spent(0), spent(5), None),  # nothing spent the window before
        (None, spent(2), spent(5), None),  # no window before yet
    ],
)
def test_spend_growth_against_the_previous_window(
    older: Snapshot | None, before: Snapshot, now: Snapshot, expected: float | None
) -> None:
    assert value(rule("spend_growth", 1.2), before, now, older) == expected


class Recorded(Deliveries):
    def __init__(self) -> None:
        super().__init__([])
        self.sent: list[AlertEvent] = []

    async def send(self, alert: AlertEvent, now: float) -> None:
        self.sent.append(alert)


async def test_two_workers_send_one_firing_and_one_resolved_for_an_error_burst() -> None:
    clock = FakeClock()
    leases = MemoryKV(clock)
    current: list[Snapshot] = [calls(0, 0)]
    errors = rule("error_rate", 0.5, window=60)
    config = AlertsConfig(rules=[errors], webhooks=[])
    workers = [Recorded(), Recorded()]
    evaluators = [Evaluator(config, lambda: current[0], leases, clock, deliveries=d) for d in workers]
    for evaluator in evaluators:
        evaluator.prime()  # the loop's boundaries are driven by hand here
    # window 1: a burst of errors; window 2: still failing; window 3: healthy; window 4: no calls
    for snapshot in (calls(2, 8), calls(3, 20), calls(30, 20), calls(30, 20)):
        current[0] = snapshot
        clock.advance(60)
        for evaluator in evaluators:
            await evaluator.evaluate(errors, clock.wall())
    sent = [alert for d in workers for alert in d.sent]
    assert [a.status for a in sent] == ["firing", "resolved"]
    assert sent[0].value == pytest.approx(0.8) and sent[1].value == pytest.approx(0.0)
    assert "FIRING" in sent[0].summary and "RESOLVED" in sent[1].summary


def test_signature_round_trip_and_slack_shape() -> None:
    body = b'{"status":"firing"}'
    signed = signature("s3cret", "1700000000", body)
    assert verify("s3cret", "1700000000", body, signed)
    assert not verify("s3cret", "1700000001", body, signed)
    assert not verify("other", "1700000000", body, signed)
    alert = AlertEvent(
        status="firing",
        rule="r",
        kind="spend",
        value=2.0,
        threshold=1,
        window=60,
        alias=None,
        at=0,
        summary="S",
    )
    assert body_for(Webhook(url="http://x", format="slack"), alert) == b'{"text":"S"}'


def test_prometheus_rules_file() -> None:
    config = AlertsConfig(
        rules=[rule("error_rate", 0.05, window=300, alias="fast"), rule("p95_overhead", 0.01, window=60)],
        webhooks=[],
    )
    assert expression(config.rules[0]) == (
        'sum(increase(llmrelay_requests_total{alias="fast",status_class="5xx"}[300s]))'
        ' / sum(increase(llmrelay_requests_total{alias="fast"}[300s])) > 0.05'
    )
    assert expression(config.rules[1]) == (
        "histogram_quantile(0.95, sum by (le) (rate(llmrelay_overhead_seconds_bucket[60s]))) > 0.01"
    )
    assert rules_file(config)["groups"][0]["rules"][0]["alert"] == "r"
