"""The admission decision, pure: may a call that could cost ``amount`` go ahead?

Given each claimed budget's standing (spend settled so far in its window, plus the live
reservations of calls still running), a call is refused by the first *hard* budget where
``spent + reserved + amount`` would exceed the limit; *soft* budgets in that state only alert.
Because the reservation is taken in the same atomic step (see :mod:`llmrelay.budgets.store`),
admitted calls never hold more than the limit between them: spend can pass a limit only by what
an admitted call costs beyond its own reservation, never by a race between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from llmrelay.budgets.rules import Claim


@dataclass(frozen=True, slots=True)
class Standing:
    spent: float = 0.0
    reserved: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    refused_by: Claim | None = None
    standing: Standing = Standing()
    """The refusing budget's standing (for the error message)."""
    alerts: tuple[tuple[Claim, Standing], ...] = field(default=())
    standings: tuple[Standing, ...] = field(default=())
    """Every claim's standing before this call, in the claims' order (the budget gauges)."""

    @property
    def allowed(self) -> bool:
        return self.refused_by is None


def decide(claims: Sequence[Claim], standings: Mapping[str, Standing], amount: float) -> Verdict:
    alerts = []
    seen = tuple(standings.get(claim.counter, Standing()) for claim in claims)
    for claim, standing in zip(claims, seen, strict=True):
        if standing.spent + standing.reserved + amount <= claim.rule.limit_usd:
            continue
        if claim.rule.mode == "hard":
            return Verdict(refused_by=claim, standing=standing, standings=seen)
        alerts.append((claim, standing))
    return Verdict(alerts=tuple(alerts), standings=seen)
