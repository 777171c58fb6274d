"""Per-alias cache counters, kept in process by the cache policy (``GET /admin/cache``).

One :class:`AliasStats` per configured alias (a wildcard alias counts all the names it serves
together). The counters live in the process that answered, so with ``server.workers`` above one
each worker counts its own calls and ``/admin/cache`` shows the worker that took the request;
the metrics endpoint is the place to sum them across workers. They are plain integer bumps on
the event loop: no lock, no store round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OUTCOMES = ("hit", "semantic_hit", "miss", "stale", "bypass")
_FIELDS = {"hit": "hits", "semantic_hit": "semantic_hits", "miss": "misses"}


@dataclass(slots=True)
class AliasStats:
    """What one alias's cache did: outcomes, and what hits saved (tokens; USD when priced)."""

    hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    stale: int = 0
    bypass: int = 0
    tokens_saved: int = 0
    cost_saved: float = 0.0

    def count(self, outcome: str) -> None:
        """Add one call with ``outcome`` (one of :data:`OUTCOMES`)."""
        name = _FIELDS.get(outcome, outcome)
        setattr(self, name, getattr(self, name) + 1)

    def saved(self, tokens: int, cost: float | None) -> None:
        self.tokens_saved += tokens
        if cost is not None:
            self.cost_saved += cost

    @property
    def hit_rate(self) -> float | None:
        """Answers from the cache (fresh, similar or stale) per lookup; bypasses are no lookup."""
        answered = self.hits + self.semantic_hits + self.stale
        lookups = answered + self.misses
        return answered / lookups if lookups else None

    def snapshot(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "semantic_hits": self.semantic_hits,
            "misses": self.misses,
            "stale": self.stale,
            "bypass": self.bypass,
            "hit_rate": self.hit_rate,
            "tokens_saved": self.tokens_saved,
            "cost_saved": round(self.cost_saved, 9),
        }
