"""The metrics seam: stream timing, attempt stats, breaker transitions and the Prometheus backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmrelay.clock import FakeClock
from llmrelay.context import CallStats, Context
from llmrelay.errors import ConnectionFailed, InvalidRequest
from llmrelay.policies.breaker_state import BreakerState, CircuitBreakerConfig, State
from llmrelay.service import Request, Result
from llmrelay.stores.rates import Decision
from llmrelay.telemetry.attempts import AttemptStats
from llmrelay.telemetry.metrics import GAP_BUCKETS, Metrics, RequestRecord, StreamTimer
from llmrelay.telemetry.prometheus import PrometheusMetrics
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, Usage, text_message

REQUEST = ChatRequest(model="m", messages=(text_message("user", "hi"),))
OK = ChatResponse(id="ok", model="m", created=0, message=text_message("assistant", "ok"))
CHUNK = ChatChunk(text="x")


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }


def test_stream_timer_buckets_gaps_like_prometheus_le() -> None:
    clock = FakeClock()
    timer = StreamTimer(clock.now)
    assert timer.times() is None
    timer.on_chunk(CHUNK)
    for gap in (0.001, 0.003, 0.003, 5.0):  # 0.001 is on a bound: it belongs to that bucket
        clock.advance(gap)
        timer.on_chunk(CHUNK)
    times = timer.times()
    assert times is not None
    assert times.first == 1_000.0 and times.last == pytest.approx(1_005.007)
    assert times.gap_sum == pytest.approx(5.007)
    expected = [0] * (len(GAP_BUCKETS) + 1)
    expected[0], expected[GAP_BUCKETS.index(0.005)], expected[-1] = 1, 2, 1
    assert list(times.gap_counts) == expected


async def test_attempt_stats_times_attempts_and_counts_upstream_errors_by_type() -> None:
    clock = FakeClock()
    seen: list[tuple[str, str, str]] = []

    class Recording(Metrics):
        def upstream_error(self, target: str, provider: str, error_type: str) -> None:
            seen.append((target, provider, error_type))

    stats = AttemptStats(clock, Recording(), label="t1", provider="openai")
    ctx = Context(clock=clock, stats=CallStats())

    async def slow_ok(request: Request, ctx: Context) -> Result:
        clock.advance(0.25)
        return OK

    async def refused(request: Request, ctx: Context) -> Result:
        clock.advance(0.5)
        raise ConnectionFailed("no")

    assert await stats(REQUEST, ctx, slow_ok) is OK
    with pytest.raises(ConnectionFailed):
        await stats(REQUEST, ctx, refused)
    assert ctx.stats is not None and ctx.stats.upstream_seconds == pytest.approx(0.75)
    assert seen == [("t1", "openai", "ConnectionFailed")]


def test_breaker_tells_every_transition() -> None:
    clock = FakeClock()
    moves: list[tuple[State, State]] = []
    config = CircuitBreakerConfig(failures=2, cooldown=10)
    state = BreakerState(config, clock, on_change=lambda old, new: moves.append((old, new)))
    for _ in range(2):
        assert state.allow()
        state.failure()
    clock.advance(10)
    assert state.allow()  # half-open probe
    state.success()
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_prometheus_counts_a_request_record_with_bounded_labels() -> None:
    metrics = PrometheusMetrics(tag_labels=["feature"])
    usage = Usage(input_tokens=10, output_tokens=4, cached_input_tokens=6)
    record = RequestRecord(
        request_id="r",
        route="/v1/chat/completions",
        status=200,
        seconds=0.2,
        alias="fast",
        key_id="k1",
        team="search",
        tags={"feature": "chat", "secret_note": "never a label"},
        target="t1",
        provider="openai",
        usage=usage,
        cost=0.5,
        attempts=3,
        retries=1,
        fallbacks=1,
        overhead=0.0004,
    )
    metrics.request(record)
    metrics.request(msgspec.structs.replace(record, status=429, usage=None, cost=None, overhead=None))
    metrics.circuit("fast:t1", "closed", "closed")
    metrics.circuit("fast:t1", "closed", "open")
    m = samples(metrics)
    call = {"route": "/v1/chat/completions", "alias": "fast", "target": "t1", "provider": "openai"}
    assert m[("llmrelay_requests_total", frozenset({**call, "status_class": "2xx"}.items()))] == 1
    assert m[("llmrelay_requests_total", frozenset({**call, "status_class": "4xx"}.items()))] == 1
    who = {"alias": "fast", "key": "k1", "team": "search", "feature": "chat"}
    assert m[("llmrelay_tokens_total", frozenset({**who, "kind": "cached_input"}.items()))] == 6
    assert m[("llmrelay_cost_usd_total", frozenset(who.items()))] == 0.5
    assert m[("llmrelay_retries_total", frozenset({("alias", "fast")}))] == 2
    assert m[("llmrelay_circuit_state", frozenset({("target", "fast:t1")}))] == 2
    assert m[("llmrelay_circuit_transitions_total", frozenset({("target", "fast:t1"), ("to", "open")}))] == 1
    assert not any("secret_note" in dict(labels) for _, labels in m)


def test_a_dead_workers_live_gauges_leave_the_multiprocess_view(tmp_path: Path) -> None:
    """Two processes count into one directory; once one has exited, its open circuit is gone."""
    script = (
        "from llmrelay.telemetry.prometheus import PrometheusMetrics\n"
        f"m = PrometheusMetrics(multiprocess_dir={str(tmp_path)!r})\n"
        "m.circuit('a:t', 'closed', 'open')\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    reader = (
        "from llmrelay.telemetry.prometheus import PrometheusMetrics\n"
        f"m = PrometheusMetrics(multiprocess_dir={str(tmp_path)!r})\n"
        "print(m.exposition().decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out)
        for s in family.samples
    }
    assert values[("llmrelay_worker_processes", ())] == 1  # the reader only: the writer has exited
    assert ("llmrelay_circuit_open", (("target", "a:t"),)) not in values
    assert values[("llmrelay_circuit_transitions_total", (("target", "a:t"), ("to", "open")))] == 1


def test_no_op_metrics_accept_everything() -> None:
    metrics = Metrics()
    metrics.request(RequestRecord(request_id="r", route="/x", status=200, seconds=0.0))
    metrics.upstream_error("t", "p", InvalidRequest.__name__)
    metrics.circuit("t", "closed", "open")
    metrics.close()
    assert metrics.enabled is False


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["team"], "tag_labels[0]"),
        (["feature", "feature"], "tag_labels[1]"),
        (["bad-name"], "tag_labels[0]"),
    ],
)
def test_tag_labels_must_be_new_valid_label_names(labels: list[str], message: str) -> None:
    from llmrelay.config import load_config
    from llmrelay.errors import ConfigError

    config = {
        "telemetry": {"tag_labels": labels},
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
    }
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(config)


def test_cache_outcomes_savings_and_limit_rejections_are_counted_from_the_record() -> None:
    metrics = PrometheusMetrics()
    base = RequestRecord(request_id="r", route="/v1/chat/completions", status=200, seconds=0.01, alias="faq")
    metrics.request(msgspec.structs.replace(base, cache="miss"))
    metrics.request(msgspec.structs.replace(base, cache="hit", cost_saved=0.25))
    metrics.request(msgspec.structs.replace(base, cache="semantic-hit; similarity=0.97", cost_saved=0.5))
    refused = msgspec.structs.replace(base, status=429, key_id="k1", tier="free")
    metrics.request(msgspec.structs.replace(refused, error="rate_limit_exceeded"))
    metrics.request(msgspec.structs.replace(refused, error="budget_exceeded"))
    metrics.request(msgspec.structs.replace(refused, status=400, error="invalid_request"))  # not a refusal
    m = samples(metrics)
    for outcome in ("miss", "hit", "semantic-hit"):  # a similarity never becomes a label value
        assert m[("llmrelay_cache_lookups_total", frozenset({("alias", "faq"), ("outcome", outcome)}))] == 1
    assert m[("llmrelay_cache_saved_usd_total", frozenset({("alias", "faq")}))] == 0.75
    who = {"alias": "faq", "key": "k1", "tier": "free"}
    for reason in ("rate_limit_exceeded", "budget_exceeded"):
        assert m[("llmrelay_rejections_total", frozenset({**who, "reason": reason}.items()))] == 1
    assert not any(
        name == "llmrelay_rejections_total" and ("reason", "invalid_request") in labels for name, labels in m
    )


def test_rate_limit_headroom_refills_between_calls_and_budgets_show_their_spend() -> None:
    """The gauges are set from the call's decision; the remaining headroom is worked out when the
    metrics are read, so it grows back as the counter refills, up to the limit."""
    now = [1_000.0]
    metrics = PrometheusMetrics(wall=lambda: now[0])
    # Started at 998 (ended at 1000 after 2 s): 24 of 100 taken, full again 14.4 s after the start.
    record = RequestRecord(
        request_id="r",
        route="/v1/chat/completions",
        status=200,
        seconds=2.0,
        at=1_000.0,
        key_id="k1",
        tier="pro",
        request_limit=Decision(True, 100, 76, 14.4),
        token_limit=Decision(True, 6_000, 5_000, 10.0),
    )
    metrics.request(record)
    metrics.budget("key=*/monthly", "k1", 0.8, 2.0)
    who = {"key": "k1", "tier": "pro"}

    def remaining(kind: str) -> float:
        return samples(metrics)[("llmrelay_ratelimit_remaining", frozenset({**who, "kind": kind}.items()))]

    # full again at 998 + 14.4 = 1012.4: at 1000, 100 * (1 - 12.4 / 60) = 79.3 whole requests left
    assert remaining("requests") == 79
    assert remaining("tokens") == 5_200  # full again at 1008: 6000 * (1 - 8 / 60)
    now[0] = 1_006.0
    assert remaining("requests") == 89
    assert remaining("tokens") == 5_800
    now[0] = 1_100.0
    assert remaining("requests") == 100
    m = samples(metrics)
    assert m[("llmrelay_ratelimit_limit", frozenset({**who, "kind": "requests"}.items()))] == 100
    budget = frozenset({("budget", "key=*/monthly"), ("subject", "k1")})
    assert m[("llmrelay_budget_spent_usd", budget)] == 0.8
    assert m[("llmrelay_budget_limit_usd", budget)] == 2.0


def test_budget_and_headroom_series_stop_growing_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmrelay.telemetry import prometheus

    monkeypatch.setattr(prometheus, "MAX_GAUGE_SERIES", 2)
    metrics = PrometheusMetrics()
    for value in ("a", "b", "c", "a"):
        metrics.budget("tag:customer=*/daily", value, 1.0, 2.0)
    m = samples(metrics)
    subjects = {dict(labels)["subject"] for name, labels in m if name == "llmrelay_budget_spent_usd"}
    assert subjects == {"a", "b"}
