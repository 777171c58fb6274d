"""Alert rules and their evaluation: pure functions of two metric snapshots a window apart.

A snapshot is every sample of the gateway's metrics (all workers' with several, see
:mod:`llmrelay.telemetry.prometheus`) as ``{(name, labels): value}``. A rule's value over a window
is computed from the difference of the snapshots at its two ends, so counters and histograms need
no extra bookkeeping on the request path:

========================  =====================================================================
``error_rate``            share of calls answered 5xx (``min_requests`` calls at least)
``p95_latency``           95th percentile of call latency, seconds (the histogram bucket bound)
``p95_overhead``          95th percentile of llmrelay's own overhead, seconds
``spend``                 USD spent in the window
``circuit_open``          circuits open now, in any worker (the threshold is usually 0)
========================  =====================================================================

A rule fires while its value is above ``threshold``; ``alias`` narrows the call-based kinds to one
alias. Window lengths are seconds (``window``, default 300).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Kind = Literal["error_rate", "p95_latency", "p95_overhead", "spend", "circuit_open"]
Labels = frozenset[tuple[str, str]]
Snapshot = Mapping[tuple[str, Labels], float]


class AlertRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    kind: Kind
    threshold: Annotated[float, Meta(ge=0)]
    window: Annotated[float, Meta(ge=1)] = 300.0
    alias: str | None = None
    min_requests: Annotated[int, Meta(ge=1)] = 1


class Webhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where alerts go. ``secret`` signs the body (HMAC-SHA256, ``x-llmrelay-signature``);
    ``format: slack`` sends ``{"text": ...}`` for a Slack incoming webhook instead of the JSON event."""

    url: str
    secret: str | None = None
    format: Literal["json", "slack"] = "json"


class AlertsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rules: list[AlertRule]
    webhooks: list[Webhook]


def value(rule: AlertRule, before: Snapshot, now: Snapshot) -> float | None:
    """The rule's value over the window between ``before`` and ``now``; ``None``: not enough data
    (fewer calls than ``min_requests``), which never fires and never resolves."""
    match rule.kind:
        case "circuit_open":
            return _sum(now, "llmrelay_circuit_open")
        case "spend":
            return _delta(before, now, "llmrelay_cost_usd_total", rule.alias)
        case "error_rate":
            calls = _delta(before, now, "llmrelay_requests_total", rule.alias)
            if calls < rule.min_requests:
                return None
            errors = _delta(before, now, "llmrelay_requests_total", rule.alias, status_class="5xx")
            return errors / calls
        case "p95_latency":
            return _quantile(before, now, "llmrelay_request_duration_seconds", rule, 0.95)
        case "p95_overhead":
            return _quantile(before, now, "llmrelay_overhead_seconds", rule, 0.95)


def firing(rule: AlertRule, observed: float | None) -> bool | None:
    """Above the threshold (``None`` when there was nothing to judge)."""
    return None if observed is None else observed > rule.threshold


def _matches(labels: Labels, alias: str | None, extra: dict[str, str]) -> bool:
    found = dict(labels)
    if alias is not None and found.get("alias") != alias:
        return False
    return all(found.get(k) == v for k, v in extra.items())


def _sum(snapshot: Snapshot, name: str, alias: str | None = None, **extra: str) -> float:
    return sum(v for (n, labels), v in snapshot.items() if n == name and _matches(labels, alias, extra))


def _delta(before: Snapshot, now: Snapshot, name: str, alias: str | None, **extra: str) -> float:
    # A counter only grows; a smaller value means the series restarted, so count from zero.
    later, earlier = _sum(now, name, alias, **extra), _sum(before, name, alias, **extra)
    return later - earlier if later >= earlier else later


def _quantile(before: Snapshot, now: Snapshot, family: str, rule: AlertRule, q: float) -> float | None:
    """The bucket bound under which ``q`` of the window's observations fell (Prometheus's
    ``histogram_quantile`` without the interpolation)."""
    bounds: dict[float, float] = {}
    for (name, labels), _ in now.items():
        if name != f"{family}_bucket" or not _matches(labels, rule.alias, {}):
            continue
        le = dict(labels)["le"]
        bound = float("inf") if le == "+Inf" else float(le)
        if bound not in bounds:
            bounds[bound] = _delta(before, now, f"{family}_bucket", rule.alias, le=le)
    if not bounds:
        return None
    total = bounds.get(float("inf"), max(bounds.values()))
    if total < rule.min_requests:
        return None
    for bound in sorted(bounds):
        if bounds[bound] >= q * total:
            return bound
    return float("inf")
