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
``spend_growth``          USD spent in the window over USD spent in the window before (1.5: +50%)
``circuit_open``          circuits open now, in any worker (the threshold is usually 0)
========================  =====================================================================

A rule fires while its value is above ``threshold``; ``alias`` narrows the call-based kinds to one
alias. Window lengths are seconds (``window``, default 300).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from llmrelay.telemetry.snapshots import Snapshot, increase, quantile, total

Kind = Literal["error_rate", "p95_latency", "p95_overhead", "spend", "spend_growth", "circuit_open"]


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


def value(rule: AlertRule, before: Snapshot, now: Snapshot, older: Snapshot | None = None) -> float | None:
    """The rule's value over the window between ``before`` and ``now`` (``older`` is a window
    before ``before``, for ``spend_growth``); ``None``: not enough data (fewer calls than
    ``min_requests``, no spend the window before), which never fires and never resolves."""
    match rule.kind:
        case "spend_growth":
            if older is None:
                return None
            previous = increase(older, before, "llmrelay_cost_usd_total", rule.alias)
            spent = increase(before, now, "llmrelay_cost_usd_total", rule.alias)
            return spent / previous if previous > 0 else None
        case "circuit_open":
            return total(now, "llmrelay_circuit_open")
        case "spend":
            return increase(before, now, "llmrelay_cost_usd_total", rule.alias)
        case "error_rate":
            calls = increase(before, now, "llmrelay_requests_total", rule.alias)
            if calls < rule.min_requests:
                return None
            errors = increase(before, now, "llmrelay_requests_total", rule.alias, status_class="5xx")
            return errors / calls
        case "p95_latency":
            family = "llmrelay_request_duration_seconds"
            return quantile(before, now, family, 0.95, alias=rule.alias, min_count=rule.min_requests)
        case "p95_overhead":
            family = "llmrelay_overhead_seconds"
            return quantile(before, now, family, 0.95, alias=rule.alias, min_count=rule.min_requests)


def firing(rule: AlertRule, observed: float | None) -> bool | None:
    """Above the threshold (``None`` when there was nothing to judge)."""
    return None if observed is None else observed > rule.threshold
