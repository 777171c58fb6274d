"""The dashboard's rate-limit headroom view, read from the metrics (:mod:`llmrelay.telemetry.headroom`).

The gauges hold each key's tightest tenant limit and when its counter is full again, as its latest
call left them; the remaining headroom is worked out at read time. Here they become the ``/ui/limits``
table (one row per key, tier and kind, with that key's refusals) and the shares the history keeps.
"""

from __future__ import annotations

from typing import Any

from llmrelay.telemetry.headroom import LIMIT, REFILLED, REMAINING
from llmrelay.telemetry.snapshots import Snapshot


def headroom_rows(snapshot: Snapshot, now: float) -> list[dict[str, Any]]:
    """One row per key, tier and kind with a rate limit: its limit, what is left now, when it is
    full again and how many calls of that key and tier were refused (429), fullest last."""
    by: dict[frozenset[tuple[str, str]], dict[str, Any]] = {}
    refused: dict[tuple[str, str], float] = {}
    for (name, labels), value in snapshot.items():
        if name in (LIMIT, REMAINING, REFILLED):
            by.setdefault(labels, dict(labels))[name] = value
        elif name == "llmrelay_rejections_total":
            named = dict(labels)
            where = (named["key"], named["tier"])
            refused[where] = refused.get(where, 0.0) + value
    rows = [
        {
            "key": found["key"],
            "tier": found["tier"],
            "kind": found["kind"],
            "limit": found[LIMIT],
            "remaining": found[REMAINING],
            "full_in": max(0.0, found.get(REFILLED, now) - now),
            "refused": refused.get((found["key"], found["tier"]), 0.0),
        }
        for found in by.values()
        if found.get(LIMIT) and REMAINING in found
    ]
    return sorted(rows, key=lambda row: (row["remaining"] / row["limit"], row["key"], row["kind"]))


def headroom_shares(snapshot: Snapshot) -> dict[str, float]:
    """``<key> (<tier>) <kind>`` -> remaining over limit, from the rate-limit gauges."""
    limits: dict[frozenset[tuple[str, str]], float] = {}
    left: dict[frozenset[tuple[str, str]], float] = {}
    for (name, labels), value in snapshot.items():
        if name == LIMIT:
            limits[labels] = value
        elif name == REMAINING:
            left[labels] = value
    shares = {}
    for labels, limit in limits.items():
        if labels in left and limit > 0:
            named = dict(labels)
            shares[f"{named['key'] or '-'} ({named['tier']}) {named['kind']}"] = left[labels] / limit
    return shares
