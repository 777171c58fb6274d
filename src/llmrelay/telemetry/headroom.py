"""Rate-limit headroom now, worked out when the metrics are read, never on the request path.

A tenant limit is a GCRA counter (:mod:`llmrelay.stores.rates`) of ``limit`` units a minute. After
a decision its whole state is one instant: when it is full again (``refilled``). Until then it
refills evenly, so what is left at any later ``now`` follows from those two numbers alone:
``limit * (1 - (refilled - now) / 60)``, whole units, at most the limit. A call under a tier sets
two gauges from its decision nearest exhaustion (``llmrelay_ratelimit_limit`` and
``llmrelay_ratelimit_refilled_timestamp_seconds``, by key, tier and kind); reading the metrics adds
``llmrelay_ratelimit_remaining`` from them, so the figure refills between calls instead of freezing
at the last one. A token figure is the state after the call's reservation (its estimate), before
the reconcile to the actual usage gives the difference back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from llmrelay.policies.tenants import MINUTE

LIMIT = "llmrelay_ratelimit_limit"
REFILLED = "llmrelay_ratelimit_refilled_timestamp_seconds"
REMAINING = "llmrelay_ratelimit_remaining"
LABELS = ("key", "tier", "kind")


def remaining(limit: float, refilled: float, now: float, period: float = MINUTE) -> float:
    """Whole units left at ``now`` of a counter of ``limit`` per ``period`` full again at ``refilled``."""
    used = max(0.0, refilled - now) / period
    return float(max(0, math.floor(limit * (1.0 - used) + 1e-9)))


def remaining_family(families: Iterable[Metric], now: float) -> GaugeMetricFamily:
    """``llmrelay_ratelimit_remaining`` from the limit and refill gauges among ``families``."""
    limits: dict[tuple[str, ...], float] = {}
    refills: dict[tuple[str, ...], float] = {}
    for family in families:
        if family.name in (LIMIT, REFILLED):
            into = limits if family.name == LIMIT else refills
            for sample in family.samples:
                into[tuple(sample.labels.get(name, "") for name in LABELS)] = sample.value
    found = GaugeMetricFamily(
        REMAINING,
        "Tenant rate limit units left now (per minute) of the limit nearest exhaustion, by key, tier"
        " and kind (requests, tokens)",
        labels=LABELS,
    )
    for labels, limit in sorted(limits.items()):
        refilled = refills.get(labels)
        if refilled is not None:
            found.add_metric(list(labels), remaining(limit, refilled, now))
    return found
