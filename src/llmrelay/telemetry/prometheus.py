"""Prometheus metrics (``prometheus-client``), correct with one worker process or several.

One worker keeps the values in its own registry. With ``--workers N`` the serve command gives
every run a private directory (``PROMETHEUS_MULTIPROC_DIR``, made before the workers start and
removed when the server stops): each worker writes its values to memory-mapped files there and a
scrape, whichever worker answers it, adds up every worker's files. Counters and histograms sum;
of the circuit gauges, ``llmrelay_circuit_state`` is the worst state any live worker is in and
``llmrelay_circuit_open`` how many live workers have that circuit open (a dead worker's gauges are
dropped at the next scrape).

Cost per call: the label children of a series are looked up once and kept (one dict lookup per
call instead of a ``labels()`` per metric), and a stream's inter-token gaps arrive as bucket
counts from :class:`~llmrelay.telemetry.metrics.StreamTimer`, added in one pass at the end.
Label values are bounded: route and status class are fixed sets, alias and target come from the
config (a requested name that resolves to nothing is ``""``), keys and teams from the key store,
tags only where ``telemetry.tag_labels`` names them, budgets from the config (and, under
``match: "*"``, the keys, users, teams or tag values that spent).

The rate-limit and budget gauges are the state of a shared store as the latest call saw it, so
with several workers they keep the most recent value any worker wrote; the remaining headroom is
worked out from them when the metrics are read (:mod:`.headroom`).
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from llmrelay.policies.breaker_state import State
from llmrelay.stores.rates import Decision
from llmrelay.telemetry.headroom import LABELS, LIMIT, REFILLED, remaining_family
from llmrelay.telemetry.metrics import GAP_BUCKETS, Metrics, RequestRecord, StreamTimes

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_STATE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
_DURATION = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_TTFT = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
_RATE = (1, 5, 10, 25, 50, 100, 200, 400, 800, 1600)
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")
CALL_LABELS = ("route", "alias", "target", "provider", "status_class")
MAX_GAUGE_SERIES = 10_000
"""Per process, at most this many headroom (key, tier, kind) and budget (budget, subject) series:
past it, new ones are not made (a budget per caller-chosen tag value cannot flood a scrape)."""


_REJECTIONS = frozenset(
    {"rate_limit_exceeded", "request_too_large_for_limit", "target_rate_limited", "budget_exceeded"}
)
"""Error codes of llmrelay's own refusals (and upstream 429s passed on as ``rate_limit_exceeded``)."""


class PrometheusMetrics(Metrics):
    enabled = True

    def __init__(
        self,
        *,
        tag_labels: Sequence[str] = (),
        multiprocess_dir: str | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``multiprocess_dir``: the shared directory of a multi-worker run (``None``: one process);
        ``wall``: Unix time now, for the headroom worked out when the metrics are read."""
        self._dir = multiprocess_dir
        self._wall = wall
        self.registry = None if multiprocess_dir else CollectorRegistry(auto_describe=True)
        self._tag_labels = tuple(tag_labels)
        r = self.registry
        self._requests = Counter("llmrelay_requests", "Client calls finished", CALL_LABELS, registry=r)
        self._duration = Histogram(
            "llmrelay_request_duration_seconds",
            "Client call latency, first byte in to last byte out (a stream: to its end)",
            CALL_LABELS,
            buckets=_DURATION,
            registry=r,
        )
        self._overhead = Histogram(
            "llmrelay_overhead_seconds",
            "llmrelay's own time: total minus upstream attempts minus backoff (a stream: to first token)",
            ("route", "alias", "stream"),
            buckets=_OVERHEAD,
            registry=r,
        )
        stream = ("alias", "target")
        self._ttft = Histogram(
            "llmrelay_time_to_first_token_seconds",
            "Streams: request start to the first chunk",
            stream,
            buckets=_TTFT,
            registry=r,
        )
        self._gap = Histogram(
            "llmrelay_inter_token_gap_seconds",
            "Streams: time between consecutive chunks",
            stream,
            buckets=GAP_BUCKETS,
            registry=r,
        )
        self._rate = Histogram(
            "llmrelay_output_tokens_per_second",
            "Streams: output tokens over the time from first to last chunk",
            stream,
            buckets=_RATE,
            registry=r,
        )
        self._upstream_errors = Counter(
            "llmrelay_upstream_errors",
            "Failed upstream attempts by canonical error type",
            ("target", "provider", "error_type"),
            registry=r,
        )
        self._retries = Counter("llmrelay_retries", "Attempts that retried a target", ("alias",), registry=r)
        self._fallbacks = Counter("llmrelay_fallbacks", "Fallback aliases taken", ("alias",), registry=r)
        self._circuit_state = Gauge(
            "llmrelay_circuit_state",
            "Circuit breaker state, worst over workers (0 closed, 1 half-open, 2 open)",
            ("target",),
            multiprocess_mode="livemax",
            registry=r,
        )
        self._circuit_open = Gauge(
            "llmrelay_circuit_open",
            "Worker processes in which this circuit is open",
            ("target",),
            multiprocess_mode="livesum",
            registry=r,
        )
        self._transitions = Counter(
            "llmrelay_circuit_transitions",
            "Circuit breaker state changes, by the state entered",
            ("target", "to"),
            registry=r,
        )
        money = ("alias", "key", "team", *self._tag_labels)
        self._tokens = Counter(
            "llmrelay_tokens", "Tokens by kind (input, cached_input, output)", (*money, "kind"), registry=r
        )
        self._cost = Counter("llmrelay_cost_usd", "Spend in USD at the targets' prices", money, registry=r)
        self._cache = Counter(
            "llmrelay_cache_lookups",
            "Cache outcomes (hit, semantic-hit, miss, stale, bypass)",
            ("alias", "outcome"),
            registry=r,
        )
        self._cache_saved = Counter(
            "llmrelay_cache_saved_usd",
            "Spend cache hits did not make, at the targets' prices",
            ("alias",),
            registry=r,
        )
        self._rejections = Counter(
            "llmrelay_rejections",
            "Calls refused by a tenant or upstream rate limit or a budget (429), by reason (the error code)",
            ("alias", "key", "tier", "reason"),
            registry=r,
        )
        self._limit = Gauge(
            LIMIT,
            "Tenant rate limit per minute nearest exhaustion for this key's calls, by key, tier and kind",
            LABELS,
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self._refilled = Gauge(
            REFILLED,
            "Unix time that limit's counter is full again, as the key's latest call left it",
            LABELS,
            multiprocess_mode="mostrecent",
            registry=r,
        )
        budget = ("budget", "subject")
        self._budget_spent = Gauge(
            "llmrelay_budget_spent_usd",
            "Spend in the budget's current window as its latest call saw it (subject: the scope's value)",
            budget,
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self._budget_limit = Gauge(
            "llmrelay_budget_limit_usd",
            "The budget's limit per window",
            budget,
            multiprocess_mode="mostrecent",
            registry=r,
        )
        Gauge(
            "llmrelay_worker_processes",
            "Live worker processes serving (and counting)",
            multiprocess_mode="livesum",
            registry=r,
        ).set(1)
        self._calls: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._overheads: dict[tuple[str, str, str], Any] = {}
        self._spend: dict[tuple[str, ...], tuple[Any, Any, Any, Any]] = {}
        self._streams: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self._headroom: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._budgets: dict[tuple[str, str], tuple[Any, Any]] = {}

    # --- recording --------------------------------------------------------------------------------

    def request(self, record: RequestRecord) -> None:
        target, alias = record.target or "", record.alias
        key = (record.route, alias, target, record.provider or "", f"{record.status // 100}xx")
        series = self._calls.get(key)
        if series is None:
            series = self._calls[key] = (self._requests.labels(*key), self._duration.labels(*key))
        series[0].inc()
        series[1].observe(record.seconds)
        if record.overhead is not None:
            where = (record.route, alias, "true" if record.stream else "false")
            overhead = self._overheads.get(where)
            if overhead is None:
                overhead = self._overheads[where] = self._overhead.labels(*where)
            overhead.observe(record.overhead)
        if record.retries:
            self._retries.labels(alias).inc(record.retries)
        if record.fallbacks:
            self._fallbacks.labels(alias).inc(record.fallbacks)
        if record.usage is not None:
            self._count_spend(record)
        if record.cache is not None:
            # `semantic-hit; similarity=0.93` counts as `semantic-hit`: a bounded label value
            self._cache.labels(alias, record.cache.partition(";")[0]).inc()
            if record.cost_saved:
                self._cache_saved.labels(alias).inc(record.cost_saved)
        if record.status == 429 and record.error in _REJECTIONS:
            self._rejections.labels(alias, record.key_id or "", record.tier or "", record.error).inc()
        if record.stream_times is not None:
            self._time_stream(record, record.stream_times)
        if record.request_limit is not None:
            self._limit_seen(record, "requests", record.request_limit)
        if record.token_limit is not None:
            self._limit_seen(record, "tokens", record.token_limit)

    def upstream_error(self, target: str, provider: str, error_type: str) -> None:
        self._upstream_errors.labels(target, provider, error_type).inc()

    def circuit(self, target: str, old: State, new: State) -> None:
        self._circuit_state.labels(target).set(_STATE[new])
        self._circuit_open.labels(target).set(1.0 if new == "open" else 0.0)
        if new != old:
            self._transitions.labels(target, new).inc()

    def budget(self, budget: str, subject: str, spent: float, limit: float) -> None:
        key = (budget, subject)
        series = self._budgets.get(key)
        if series is None:
            if len(self._budgets) >= MAX_GAUGE_SERIES:
                return  # a `match: "*"` budget over caller-chosen tag values: bounded here
            series = self._budgets[key] = (self._budget_spent.labels(*key), self._budget_limit.labels(*key))
        series[0].set(spent)
        series[1].set(limit)

    def _limit_seen(self, record: RequestRecord, kind: str, decision: Decision) -> None:
        """Two gauge sets: the limit and when its counter is full again (decided at the call's start)."""
        key = (record.key_id or "", record.tier or "", kind)
        series = self._headroom.get(key)
        if series is None:
            if len(self._headroom) >= MAX_GAUGE_SERIES:
                return
            series = self._headroom[key] = (self._limit.labels(*key), self._refilled.labels(*key))
        series[0].set(decision.limit)
        series[1].set(record.at - record.seconds + decision.reset)

    def _count_spend(self, record: RequestRecord) -> None:
        tags = record.tags
        key = (
            record.alias,
            record.key_id or "",
            record.team or "",
            *(tags.get(name, "") for name in self._tag_labels),
        )
        series = self._spend.get(key)
        if series is None:
            series = self._spend[key] = (
                self._tokens.labels(*key, "input"),
                self._tokens.labels(*key, "cached_input"),
                self._tokens.labels(*key, "output"),
                self._cost.labels(*key),
            )
        usage = record.usage
        assert usage is not None
        series[0].inc(usage.input_tokens)
        series[1].inc(usage.cached_input_tokens)
        series[2].inc(usage.output_tokens)
        if record.cost:
            series[3].inc(record.cost)

    def _time_stream(self, record: RequestRecord, times: StreamTimes) -> None:
        key = (record.alias, record.target or "")
        series = self._streams.get(key)
        if series is None:
            series = self._streams[key] = (
                self._ttft.labels(*key),
                self._gap.labels(*key),
                self._rate.labels(*key),
            )
        if record.ttft is not None:
            series[0].observe(record.ttft)
        _observe_counts(series[1], times.gap_counts, times.gap_sum)
        spread = times.last - times.first
        if record.usage is not None and record.usage.output_tokens and spread > 0:
            series[2].observe(record.usage.output_tokens / spread)

    # --- reading ----------------------------------------------------------------------------------

    def families(self) -> list[Metric]:
        """Every metric family now (all workers' with several), with the headroom worked out."""
        if self.registry is not None:
            found = list(self.registry.collect())
        else:
            assert self._dir is not None
            _forget_dead_workers(self._dir)
            found = list(MultiProcessCollector(None, path=self._dir).collect())  # type: ignore[no-untyped-call]
        found.append(remaining_family(found, self._wall()))
        return found

    def exposition(self) -> bytes:
        """The text format of every series (all workers' with several)."""
        return generate_latest(_Families(self.families()))

    def snapshot(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample now (all workers' with several), for the alert evaluator and the dashboard."""
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families()
            for sample in family.samples
        }

    def close(self) -> None:
        if self._dir is not None:
            mark_process_dead(os.getpid(), self._dir)  # type: ignore[no-untyped-call]


class _Families(Collector):
    """Families already collected, for ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _observe_counts(child: Any, counts: Sequence[int], total: float) -> None:
    """Add pre-bucketed observations to a histogram child in one pass (``prometheus-client`` has
    no bulk observe; its children keep one value per bucket, non-cumulative, and a sum)."""
    buckets = child._buckets
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
    child._sum.inc(total)


def _forget_dead_workers(path: str) -> None:
    """Drop the live gauges of worker processes that no longer exist (a crashed worker that the
    supervisor replaced); counters and histograms keep their files: what they counted happened."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        found = _LIVE_FILE.search(name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass
