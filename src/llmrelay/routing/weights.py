"""Weighted ordering of targets: a pure function of the weights and a random source.

Efraimidis-Spirakis sampling without replacement: each target draws ``u ** (1 / weight)`` and the
targets are tried in descending order of their draws. The first pick follows the weights exactly,
and the rest form the fallback order, so a failed target is never tried twice in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def weighted_order(weights: Sequence[float], rand: Callable[[], float]) -> list[int]:
    """Indices of ``weights`` in the order to try them (heavier first, on average)."""
    if len(weights) == 1:
        return [0]
    keys = [(max(rand(), 1e-12) ** (1.0 / w), i) for i, w in enumerate(weights)]
    keys.sort(reverse=True)
    return [i for _, i in keys]
