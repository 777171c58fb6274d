"""Budget rules from config, their windows, and the claims one call makes on them.

A rule names a ``scope`` (``key``, ``user``, ``team`` or ``tag:<name>``) and a ``match``: one value
(the team ``search``), or ``*`` for a budget of its own per value (every key its own $10 a month).
A call counts against every rule whose scope value it has (from its :class:`~llmrelay.context.Context`,
which takes user and team from the key's record, never from the request). Windows are calendar
windows in UTC: ``daily`` from midnight, ``monthly`` from the first of the month, ``total`` forever;
spend is kept per window, so a new window starts at zero without a reset job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from llmrelay.context import Context

Window = Literal["daily", "monthly", "total"]
_SCOPE = re.compile(r"key|user|team|tag:[A-Za-z0-9_.-]{1,64}")
_DAY = 86_400.0


class BudgetConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``{scope: team, match: search, window: monthly, limit_usd: 100, mode: hard}``."""

    scope: str
    match: str = "*"
    window: Window = "monthly"
    limit_usd: Annotated[float, Meta(ge=0)]
    mode: Literal["hard", "soft"] = "hard"
    """``hard`` refuses a call that could take spend past the limit; ``soft`` lets it through
    and calls the alert hook once per budget and window."""
    name: str | None = None
    """How errors, alerts and ``budget_status`` name it (default ``<scope>=<match>/<window>``)."""

    @property
    def label(self) -> str:
        return self.name or f"{self.scope}={self.match}/{self.window}"


def scope_is_valid(scope: str) -> bool:
    return _SCOPE.fullmatch(scope) is not None


@dataclass(frozen=True, slots=True)
class Claim:
    """One budget a call counts against, in the window it falls in."""

    rule: BudgetConfig
    value: str
    counter: str
    """Where the spend is kept: the rule's label and the scope's value (one per value under ``*``)."""
    window_start: float
    resets_at: float | None


def window_bounds(window: Window, wall: float) -> tuple[float, float | None]:
    """The UTC window holding ``wall``: its start and when the next begins (``None``: never)."""
    if window == "total":
        return 0.0, None
    if window == "daily":
        start = wall - wall % _DAY
        return start, start + _DAY
    day = datetime.fromtimestamp(wall, UTC)
    first = datetime(day.year, day.month, 1, tzinfo=UTC)
    following = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return first.timestamp(), following.timestamp()


def scope_value(scope: str, ctx: Context) -> str | None:
    if scope == "key":
        return ctx.principal
    if scope == "user":
        return ctx.user
    if scope == "team":
        return ctx.team
    return ctx.tags.get(scope[4:])  # tag:<name>


def claims(rules: tuple[BudgetConfig, ...], ctx: Context, wall: float) -> list[Claim]:
    """Every budget ``ctx`` counts against at ``wall``, ordered by counter (the lock order)."""
    found = []
    for rule in rules:
        value = scope_value(rule.scope, ctx)
        if value is None or (rule.match != "*" and rule.match != value):
            continue
        start, resets = window_bounds(rule.window, wall)
        found.append(Claim(rule, value, f"{rule.label}|{value}", start, resets))
    found.sort(key=lambda claim: claim.counter)
    return found
