"""Alert rules and their evaluation: pure functions of two metric snapshots a window apart.

A snapshot is every sample of the gateway's metrics (all workers' with several, see
:mod:`llmrelay.telemetry.prometheus`) as ``{(name, labels): value}``. A rule's value over a window
is computed from the difference of the snapshots at its two ends, so counters and histograms need
no extra bookkeeping on the request path:

=========================  ====================================================================
``error_rate``             share of calls answered 5xx (``min_requests`` calls at least)
``p95_latency``            95th percentile of call latency, seconds (the histogram bucket bound)
``p95_overhead``           95th percentile of llmrelay's own overhead, seconds
``spend``                  USD spent in the window
``spend_growth``           USD spent in the window over USD spent in the window before (1.5: +50%)
``circuit_open``           circuits open now, in any worker (the threshold is usually 0)
``rate_limit_saturation``  share of calls refused by a tenant or upstream rate limit (429)
``budget_used``            each budget's spend this window over its limit (0.5, 0.8, 1: one rule
                           each); one alert per budget (and per key, user, team or tag value under
                           ``match: "*"``), firing when it *reaches* the threshold
``rate_limit_headroom``    each key's rate-limit headroom now (share of its tightest limit left,
                           by key, tier and kind); one alert each, firing *below* the threshold
``cache_hit_rate``         share of cache lookups answered from the cache (hit, semantic hit,
                           stale; bypasses do not count); fires while *below* the threshold
``cache_hit_rate_drop``    that share over the previous window's (0.5: halved); fires *below*
=========================  ====================================================================

A rule fires while its value is above ``threshold`` (``budget_used``: at or above it; the cache
kinds and ``rate_limit_headroom``: below it); ``alias`` narrows the call-based kinds to one alias,
``budget`` the ``budget_used`` kind to one budget (its name, or ``<scope>=<match>/<window>``).
Window lengths are seconds (``window``, default 300). ``min_requests`` is the fewest calls (cache
kinds: lookups, in both windows for the drop) a window needs to be judged.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from llmrelay.telemetry.snapshots import Snapshot, increase, quantile, total

Kind = Literal[
    "error_rate",
    "p95_latency",
    "p95_overhead",
    "spend",
    "spend_growth",
    "circuit_open",
    "rate_limit_saturation",
    "rate_limit_headroom",
    "budget_used",
    "cache_hit_rate",
    "cache_hit_rate_drop",
]
Direction = Literal["above", "reaches", "below"]
LIMIT_REFUSALS = ("rate_limit_exceeded", "request_too_large_for_limit", "target_rate_limited")
"""The rejection reasons (``llmrelay_rejections_total``) that are rate limits (not budgets)."""
CACHE_HITS = ("hit", "semantic-hit", "stale")
CACHE_LOOKUPS = (*CACHE_HITS, "miss")
"""Cache outcomes that looked the cache up (a ``bypass`` did not)."""


class AlertRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    kind: Kind
    threshold: Annotated[float, Meta(ge=0)]
    window: Annotated[float, Meta(ge=1)] = 300.0
    alias: str | None = None
    budget: str | None = None
    min_requests: Annotated[int, Meta(ge=1)] = 1

    @property
    def direction(self) -> Direction:
        if self.kind == "budget_used":
            return "reaches"
        below = self.kind.startswith("cache_") or self.kind == "rate_limit_headroom"
        return "below" if below else "above"


class Webhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where alerts go. ``secret`` signs the body (HMAC-SHA256, ``x-llmrelay-signature``);
    ``format: slack`` sends ``{"text": ...}`` for a Slack incoming webhook instead of the JSON event."""

    url: str
    secret: str | None = None
    format: Literal["json", "slack"] = "json"


class AlertsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    rules: list[AlertRule]
    webhooks: list[Webhook]


def values(
    rule: AlertRule, before: Snapshot, now: Snapshot, older: Snapshot | None = None
) -> dict[str, float | None]:
    """The rule's value per instance: one per budget for ``budget_used`` (named
    ``<budget>|<subject>``), one per key, tier and kind for ``rate_limit_headroom``
    (``<key>|<tier>|<kind>``), else the one value under ``""``."""
    if rule.kind == "budget_used":
        return budgets_used(now, rule.budget)
    if rule.kind == "rate_limit_headroom":
        return headroom_left(now)
    return {"": value(rule, before, now, older)}


def value(rule: AlertRule, before: Snapshot, now: Snapshot, older: Snapshot | None = None) -> float | None:
    """The rule's value over the window between ``before`` and ``now`` (``older`` is a window
    before ``before``, for the kinds against the previous window); ``None``: not enough data
    (fewer calls than ``min_requests``, no spend the window before), which never fires and never
    resolves. For ``budget_used``, the highest budget's; for ``rate_limit_headroom``, the lowest."""
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
        case "error_rate" | "rate_limit_saturation":
            calls = increase(before, now, "llmrelay_requests_total", rule.alias)
            if calls < rule.min_requests:
                return None
            if rule.kind == "error_rate":
                bad = increase(before, now, "llmrelay_requests_total", rule.alias, status_class="5xx")
            else:
                bad = _sum(before, now, "llmrelay_rejections_total", rule.alias, "reason", LIMIT_REFUSALS)
            return bad / calls
        case "p95_latency":
            family = "llmrelay_request_duration_seconds"
            return quantile(before, now, family, 0.95, alias=rule.alias, min_count=rule.min_requests)
        case "p95_overhead":
            family = "llmrelay_overhead_seconds"
            return quantile(before, now, family, 0.95, alias=rule.alias, min_count=rule.min_requests)
        case "cache_hit_rate":
            return _hit_rate(before, now, rule)
        case "cache_hit_rate_drop":
            if older is None:
                return None
            earlier, current = _hit_rate(older, before, rule), _hit_rate(before, now, rule)
            return None if earlier is None or current is None or earlier == 0 else current / earlier
        case "budget_used":
            return max((v for v in budgets_used(now, rule.budget).values() if v is not None), default=None)
        case "rate_limit_headroom":
            return min((v for v in headroom_left(now).values() if v is not None), default=None)


def budgets_used(now: Snapshot, budget: str | None = None) -> dict[str, float | None]:
    """Every budget's spend over its limit (``budget``: only that one), by ``<budget>|<subject>``."""
    ratios = _ratios(now, "llmrelay_budget_spent_usd", "llmrelay_budget_limit_usd", ("budget", "subject"))
    if budget is None:
        return ratios
    return {instance: ratio for instance, ratio in ratios.items() if instance.partition("|")[0] == budget}


def _ratios(now: Snapshot, part: str, whole: str, labels: tuple[str, ...]) -> dict[str, float | None]:
    """``part`` over ``whole`` per label set (named by its ``labels`` values joined by ``|``)."""
    parts: dict[str, float] = {}
    wholes: dict[str, float] = {}
    for (name, found), value in now.items():
        if name in (part, whole):
            named = dict(found)
            instance = "|".join(named.get(label, "") for label in labels)
            (parts if name == part else wholes)[instance] = value
    return {
        instance: (parts[instance] / amount if amount > 0 else None)
        for instance, amount in sorted(wholes.items())
        if instance in parts
    }


def headroom_left(now: Snapshot) -> dict[str, float | None]:
    """Every key's rate-limit headroom now over its limit, by ``<key>|<tier>|<kind>``."""
    return _ratios(now, "llmrelay_ratelimit_remaining", "llmrelay_ratelimit_limit", ("key", "tier", "kind"))


def firing(rule: AlertRule, observed: float | None) -> bool | None:
    """Past the threshold in the rule's direction (``None`` when there was nothing to judge)."""
    if observed is None:
        return None
    match rule.direction:
        case "above":
            return observed > rule.threshold
        case "reaches":
            return observed >= rule.threshold
        case "below":
            return observed < rule.threshold


def _sum(
    before: Snapshot, now: Snapshot, name: str, alias: str | None, label: str, among: tuple[str, ...]
) -> float:
    return sum(increase(before, now, name, alias, **{label: value}) for value in among)


def _hit_rate(before: Snapshot, now: Snapshot, rule: AlertRule) -> float | None:
    name = "llmrelay_cache_lookups_total"
    lookups = _sum(before, now, name, rule.alias, "outcome", CACHE_LOOKUPS)
    if lookups < rule.min_requests or lookups <= 0:
        return None
    return _sum(before, now, name, rule.alias, "outcome", CACHE_HITS) / lookups
