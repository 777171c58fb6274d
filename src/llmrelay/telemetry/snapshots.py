"""Reading the metrics back: sums, increases and quantiles over snapshots of every sample.

A snapshot is ``{(sample name, labels): value}`` (:meth:`~.prometheus.PrometheusMetrics.snapshot`,
all workers' values with several). The alert rules (:mod:`llmrelay.alerts.rules`) and the
dashboard's ring buffer (:mod:`llmrelay.server.ui.history`) compute what they show from the
difference of two snapshots, so neither adds bookkeeping to the request path.
"""

from __future__ import annotations

from collections.abc import Mapping

Labels = frozenset[tuple[str, str]]
Snapshot = Mapping[tuple[str, Labels], float]


def matches(labels: Labels, alias: str | None, extra: Mapping[str, str]) -> bool:
    found = dict(labels)
    if alias is not None and found.get("alias") != alias:
        return False
    return all(found.get(k) == v for k, v in extra.items())


def total(snapshot: Snapshot, name: str, alias: str | None = None, **extra: str) -> float:
    """The sum of ``name``'s samples (those of ``alias`` and with the ``extra`` labels)."""
    return sum(v for (n, labels), v in snapshot.items() if n == name and matches(labels, alias, extra))


def increase(before: Snapshot, now: Snapshot, name: str, alias: str | None = None, **extra: str) -> float:
    """How much a counter grew; a smaller value means the series restarted: count from zero."""
    later, earlier = total(now, name, alias, **extra), total(before, name, alias, **extra)
    return later - earlier if later >= earlier else later


def increase_by(before: Snapshot, now: Snapshot, name: str, label: str) -> dict[str, float]:
    """How much a counter grew per value of ``label`` (values that did not grow are left out)."""
    later, earlier = _by(now, name, label), _by(before, name, label)
    grown = {}
    for value, amount in later.items():
        was = earlier.get(value, 0.0)
        grew = amount - was if amount >= was else amount
        if grew > 0:
            grown[value] = grew
    return grown


def _by(snapshot: Snapshot, name: str, label: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for (n, labels), v in snapshot.items():
        if n == name:
            value = dict(labels).get(label, "")
            found[value] = found.get(value, 0.0) + v
    return found


def quantile(
    before: Snapshot, now: Snapshot, family: str, q: float, *, alias: str | None = None, min_count: int = 1
) -> float | None:
    """The histogram bucket bound under which ``q`` of the observations between the snapshots
    fell (``histogram_quantile`` without interpolation); ``None`` with fewer than ``min_count``."""
    bucket = f"{family}_bucket"
    bounds: dict[float, float] = {}
    for name, labels in now:
        if name != bucket or not matches(labels, alias, {}):
            continue
        le = dict(labels)["le"]
        bound = float("inf") if le == "+Inf" else float(le)
        if bound not in bounds:
            bounds[bound] = increase(before, now, bucket, alias, le=le)
    if not bounds:
        return None
    count = bounds.get(float("inf"), max(bounds.values()))
    if count < min_count or count <= 0:
        return None
    for bound in sorted(bounds):
        if bounds[bound] >= q * count:
            return bound
    return float("inf")
