"""Routing strategies: the order in which an alias's targets are tried. Pure functions.

* ``weighted`` (default): weighted random order (:func:`~.weights.weighted_order`).
* ``least-latency``: power of two choices: draw two targets by weight and lead with the one whose
  latency EWMA is lower (unknown latency counts as best, so new targets get measured); the rest
  follow in weighted order. Two choices instead of "always the fastest" avoid herding every call
  onto one target whose EWMA is stale.
* ``least-busy``: fewest calls in flight first (ties in weighted order).
* ``cheapest``: lowest estimated cost of this request first (the router passes each target's
  :func:`~llmrelay.pricing.cost.estimated_cost`); targets whose cost is unknown follow the priced
  ones; ties in weighted order.

Targets cooling down after a 429 always go last, in the same relative order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

from llmrelay.routing.health import TargetHealth
from llmrelay.routing.weights import weighted_order

Strategy = Literal["weighted", "least-latency", "least-busy", "cheapest"]


def order_targets(
    strategy: Strategy,
    weights: Sequence[float],
    health: Sequence[TargetHealth],
    costs: Sequence[float | None],
    rand: Callable[[], float],
) -> list[int]:
    order = weighted_order(weights, rand)
    if strategy == "least-latency" and len(order) > 1:
        first, second = order[0], order[1]
        if _latency(health[second]) < _latency(health[first]):
            order[0], order[1] = second, first
    elif strategy == "least-busy":
        order.sort(key=lambda i: health[i].in_flight)
    elif strategy == "cheapest":
        order.sort(key=lambda i: _cost(costs[i]))
    return sorted(order, key=lambda i: health[i].cooling)


def _latency(health: TargetHealth) -> float:
    return -1.0 if health.latency is None else health.latency


def _cost(cost: float | None) -> float:
    return math.inf if cost is None else cost
