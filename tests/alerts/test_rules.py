"""Alert rules over two snapshots, the evaluator's once-per-change delivery, and the rules file."""

from __future__ import annotations

import msgspec
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


def limited(calls: float, refused: float, budget_refused: float = 0) -> Snapshot:
    base = {"alias": "a", "key": "k", "tier": "free"}
    return {
        ("llmrelay_requests_total", frozenset({("alias", "a"), ("status_class", "4xx")})): calls,
        ("llmrelay_rejections_total", frozenset({**base, "reason": "rate_limit_exceeded"}.items())): refused,
        (
            "llmrelay_rejections_total",
            frozenset({**base, "reason": "budget_exceeded"}.items()),
        ): budget_refused,
    }


def lookups(hits: float, misses: float, bypasses: float = 0) -> Snapshot:
    return {
        ("llmrelay_cache_lookups_total", frozenset({("alias", "a"), ("outcome", outcome)})): n
        for outcome, n in (("hit", hits), ("miss", misses), ("bypass", bypasses))
    }


def budgets(**spent: float) -> Snapshot:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for subject, usd in spent.items():
        labels = frozenset({("budget", "key=*/monthly"), ("subject", subject)})
        found[("llmrelay_budget_spent_usd", labels)] = usd
        found[("llmrelay_budget_limit_usd", labels)] = 10.0
    return found


async def run(the_rule: AlertRule, script: list[Snapshot]) -> list[AlertEvent]:
    """Two workers' evaluators over the same scripted snapshots, one window apart, sharing leases."""
    clock = FakeClock()
    leases = MemoryKV(clock)
    current = [script[0]]
    config = AlertsConfig(rules=[the_rule], webhooks=[])
    workers = [Recorded(), Recorded()]
    evaluators = [Evaluator(config, lambda: current[0], leases, clock, deliveries=d) for d in workers]
    for evaluator in evaluators:
        evaluator.prime()
    for snapshot in script[1:]:
        current[0] = snapshot
        clock.advance(the_rule.window)
        for evaluator in evaluators:
            await evaluator.evaluate(the_rule, clock.wall())
    return sorted((alert for d in workers for alert in d.sent), key=lambda alert: alert.at)


@pytest.mark.parametrize(
    ("the_rule", "script", "fired_at", "resolved_at"),
    [
        # 6 of 10 calls refused by a rate limit; then 1 of 20 (budget refusals are not rate limits)
        (
            rule("rate_limit_saturation", 0.2),
            [
                limited(0, 0),
                limited(10, 0),
                limited(20, 6),
                limited(30, 10),
                limited(50, 11, 15),
                limited(60, 11),
            ],
            0.6,
            0.05,
        ),
        # 8 of 10 lookups hit, then 1 of 10 (50 bypasses are no lookups), then 20 of 22
        (
            rule("cache_hit_rate", 0.5),
            [lookups(0, 0), lookups(8, 2), lookups(9, 11, 50), lookups(10, 20, 50), lookups(30, 22, 50)],
            0.1,
            20 / 22,
        ),
        # 0.8, 0.8, then 0.1 (an eighth of the window before), then 0.1 again (no further drop)
        (
            rule("cache_hit_rate_drop", 0.5),
            [lookups(0, 0), lookups(8, 2), lookups(16, 4), lookups(17, 13), lookups(18, 22)],
            0.125,
            1.0,
        ),
    ],
)
async def test_each_kind_fires_once_and_resolves_once_for_a_scripted_run(
    the_rule: AlertRule, script: list[Snapshot], fired_at: float, resolved_at: float
) -> None:
    sent = await run(the_rule, script)
    assert [a.status for a in sent] == ["firing", "resolved"]
    assert sent[0].value == pytest.approx(fired_at) and sent[1].value == pytest.approx(resolved_at)
    assert sent[0].instance is None


async def test_every_budget_crossing_its_threshold_fires_and_resolves_on_its_own() -> None:
    used = AlertRule(name="budget_80", kind="budget_used", threshold=0.8)
    script = [
        budgets(),
        budgets(a=2, b=5),
        budgets(a=8, b=6),  # a reaches 80% (exactly)
        budgets(a=9.5, b=8.5),  # b crosses; a is still past it: nothing new for a
        budgets(a=0.1, b=9),  # a's new window starts
        budgets(a=0.3, b=0.2),
        budgets(a=0.4, b=0.3),
    ]
    sent = await run(used, script)
    assert [(a.status, a.instance) for a in sent] == [
        ("firing", "key=*/monthly|a"),
        ("firing", "key=*/monthly|b"),
        ("resolved", "key=*/monthly|a"),
        ("resolved", "key=*/monthly|b"),
    ]
    assert [a.value for a in sent] == pytest.approx([0.8, 0.85, 0.01, 0.02])
    assert "of key=*/monthly|a is 0.8 (at or above 0.8" in sent[0].summary
    only_b = AlertRule(name="b_full", kind="budget_used", threshold=1.0, budget="key=*/monthly")
    assert value(only_b, {}, budgets(a=10, b=3)) == 1.0
    assert value(msgspec.structs.replace(only_b, budget="team=x/daily"), {}, budgets(a=10)) is None


def test_prometheus_rules_for_the_new_kinds() -> None:
    assert expression(rule("rate_limit_saturation", 0.1, window=60)) == (
        'sum(increase(llmrelay_rejections_total{reason=~"rate_limit_exceeded|request_too_large_for_limit'
        '|target_rate_limited"}[60s])) / sum(increase(llmrelay_requests_total[60s])) > 0.1'
    )
    assert expression(rule("budget_used", 0.8)) == (
        "llmrelay_budget_spent_usd / llmrelay_budget_limit_usd >= 0.8"
    )
    hits = 'llmrelay_cache_lookups_total{alias="faq",outcome=~"hit|semantic-hit|stale"}'
    looked = 'llmrelay_cache_lookups_total{alias="faq",outcome=~"hit|semantic-hit|stale|miss"}'
    now = f"(sum(increase({hits}[60s])) / sum(increase({looked}[60s])))"
    before = f"(sum(increase({hits}[60s] offset 60s)) / sum(increase({looked}[60s] offset 60s)))"
    assert expression(rule("cache_hit_rate", 0.3, window=60, alias="faq")) == f"{now} < 0.3"
    assert expression(rule("cache_hit_rate_drop", 0.5, window=60, alias="faq")) == f"{now} / {before} < 0.5"


@pytest.mark.parametrize(
    ("alert", "message"),
    [
        ({"kind": "budget_used", "budget": "team=x/daily"}, "names no configured budget"),
        ({"kind": "spend", "budget": "key=*/monthly"}, "narrows `budget_used` rules only"),
    ],
)
def test_an_alerts_budget_must_be_a_configured_one(alert: dict[str, object], message: str) -> None:
    from llmrelay.config import load_config
    from llmrelay.errors import ConfigError

    config = {
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
        "budgets": [{"scope": "key", "limit_usd": 1}],
        "alerts": {"rules": [{"name": "b", "threshold": 0.5, **alert}], "webhooks": []},
    }
    with pytest.raises(ConfigError, match=message):
        load_config(config)
    ok = {
        **config,
        "alerts": {
            "rules": [{"name": "b", "kind": "budget_used", "threshold": 0.5, "budget": "key=*/monthly"}],
            "webhooks": [],
        },
    }
    assert load_config(ok).alerts is not None


def headroom(**left: float) -> Snapshot:
    """Each key's requests headroom (limit 10) now."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for key, remaining in left.items():
        labels = frozenset({("key", key), ("tier", "free"), ("kind", "requests")})
        found[("llmrelay_ratelimit_limit", labels)] = 10
        found[("llmrelay_ratelimit_remaining", labels)] = remaining
    return found


async def test_each_keys_headroom_falling_below_the_threshold_fires_and_resolves_on_its_own() -> None:
    low = AlertRule(name="low_headroom", kind="rate_limit_headroom", threshold=0.2)
    script = [headroom(), headroom(a=9, b=10), headroom(a=1, b=8), headroom(a=0, b=1), headroom(a=10, b=10)]
    sent = await run(low, script)
    assert [(a.status, a.instance, a.value) for a in sent] == [
        ("firing", "a|free|requests", 0.1),
        ("firing", "b|free|requests", 0.1),
        ("resolved", "a|free|requests", 1.0),
        ("resolved", "b|free|requests", 1.0),
    ]
    assert value(low, {}, headroom(a=3, b=5)) == 0.3  # the lowest
    assert expression(low) == "llmrelay_ratelimit_remaining / llmrelay_ratelimit_limit < 0.2"
