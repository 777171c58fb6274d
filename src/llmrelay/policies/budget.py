"""Budget policy (request scope, the last before the router): reserve the most a call can cost,
debit what it did cost.

Place: after ``cache`` and the token limit (docs/architecture.md §3), so a cache hit or a refused
call takes no budget. For a call that counts against any budget (:mod:`llmrelay.budgets.rules`),
its maximum cost is estimated (input tokens by :func:`llmrelay.pricing.tokens.estimate_input_tokens`,
output by ``max_tokens`` or the default cap, priced at the alias's most expensive target) and
reserved atomically with the check (:mod:`llmrelay.budgets.store`). A *hard* budget that could be
exceeded refuses the call (:class:`BudgetExceeded`: which budget, spent, limit, when it resets);
a *soft* one calls the alert hook once per budget and window in this process. At the end the
reservation becomes the actual cost (priced at the target that answered); a failure releases it.
Each budget's spend as the call saw it goes to the metrics (``llmrelay_budget_spent_usd``, which
the ``budget_used`` alerts read): at the reservation, and at the end with the call's cost added.

Streams: an observer settles at the stream's end with its final usage; a stream that fails or is
closed before its end releases the reservation (its usage is unknown). Calls against no budget
cost one tuple scan. When the budget store is unreachable the call goes ahead unbudgeted (logged
once per outage): budgets never take the gateway down with their database.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmrelay.budgets.decide import Standing
from llmrelay.budgets.rules import BudgetConfig, Claim, claims
from llmrelay.budgets.store import BudgetStore
from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import RateLimited
from llmrelay.pricing.cost import cost, estimated_cost
from llmrelay.pricing.prices import Price
from llmrelay.pricing.tokens import estimate_input_tokens, output_bound
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.telemetry.metrics import Metrics

log = logging.getLogger("llmrelay.budget")

HOLD_TTL = 3_600.0
"""A reservation stops counting this long after it was taken, or at the call's deadline if later:
what a crashed process leaves behind frees itself."""


class BudgetExceeded(RateLimited):
    """A hard budget would be exceeded: 429 ``budget_exceeded`` with ``Retry-After`` until its window
    resets, and ``x-should-retry: false`` (an SDK's automatic retries could not succeed sooner)."""

    code = "budget_exceeded"


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """What the soft-limit hook receives."""

    budget: str
    scope: str
    value: str
    spent_usd: float
    reserved_usd: float
    limit_usd: float
    resets_at: float | None


def log_alert(alert: BudgetAlert) -> None:
    log.warning(
        "soft budget %s (%s=%s) is over its limit: spent %.6f + reserved %.6f of %.6f USD",
        alert.budget,
        alert.scope,
        alert.value,
        alert.spent_usd,
        alert.reserved_usd,
        alert.limit_usd,
    )


class Budget:
    def __init__(
        self,
        rules: Sequence[BudgetConfig],
        store: BudgetStore,
        clock: Clock,
        *,
        prices: Mapping[str, Price | None],
        alias_prices: Callable[[str], Sequence[Price]],
        alert: Callable[[BudgetAlert], None] = log_alert,
        metrics: Metrics | None = None,
    ) -> None:
        self._rules = tuple(rules)
        self._metrics = metrics or Metrics()
        self.store = store
        self._clock = clock
        self._prices = prices
        self._alias_prices = alias_prices
        self._alert = alert
        self._alerted: set[tuple[str, float]] = set()
        self._failing = False

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        now = self._clock.wall()
        claimed = claims(self._rules, ctx, now)
        if not claimed:
            return await call_next(request, ctx)
        amount = self.max_cost(request)
        hold = os.urandom(12).hex()
        remaining = ctx.remaining()
        expires = now + max(HOLD_TTL, remaining or 0.0)
        try:
            verdict = await self.store.reserve(hold, claimed, amount, now=now, expires_at=expires)
        except Exception as err:  # the store's failure must not fail the call: unbudgeted, logged
            self._outage(err)
            return await call_next(request, ctx)
        self._failing = False
        self.report(claimed, verdict.standings, 0.0)
        if verdict.refused_by is not None:
            raise _refusal(verdict.refused_by, verdict.standing, amount, now)
        for claim, standing in verdict.alerts:
            self._soft(claim, standing)
        try:
            result = await call_next(request, ctx)
        except BaseException:
            await self.release(hold)
            raise
        if isinstance(result, ChatStream):
            result.observe(_Settle(self, hold, claimed, verdict.standings))
            return result
        spent = self.cost_of(result.target, result.usage)
        await self.settle(hold, claimed, spent)
        self.report(claimed, verdict.standings, spent)
        return result

    def max_cost(self, request: Request) -> float:
        """The most this call can cost: estimated input plus its output cap, at the alias's most
        expensive priced target (0 when no target of the alias has a price)."""
        tokens_in, tokens_out = estimate_input_tokens(request), output_bound(request)
        costs = [estimated_cost(p, tokens_in, tokens_out) or 0.0 for p in self._alias_prices(request.model)]
        return max(costs, default=0.0)

    def cost_of(self, target: str | None, usage: Any) -> float:
        price = self._prices.get(target) if target else None
        return 0.0 if price is None else cost(usage, price)

    async def status(self, ctx: Context) -> dict[str, Any]:
        """Every budget ``ctx`` counts against, its spend, reservations and reset (``/v1/key/info``)."""
        now = self._clock.wall()
        claimed = claims(self._rules, ctx, now)
        standings = await self.store.standings(claimed, now=now) if claimed else {}
        return {"budgets": [_describe(claim, standings.get(claim.counter, Standing())) for claim in claimed]}

    async def settle(self, hold: str, claimed: Sequence[Claim], spent: float) -> None:
        try:
            await self.store.settle(hold, claimed, spent)
        except Exception as err:  # the reservation expires on its own; the spend is logged
            self._outage(err)
            log.error("budget: could not debit %.6f USD (hold %s)", spent, hold)

    async def release(self, hold: str) -> None:
        try:
            await self.store.release(hold)
        except Exception as err:  # the reservation expires on its own
            self._outage(err)

    def report(self, claimed: Sequence[Claim], standings: Sequence[Standing], spent: float) -> None:
        """Each budget's settled spend before this call plus ``spent``, to the metrics."""
        if self._metrics.enabled:
            for claim, standing in zip(claimed, standings, strict=True):
                self._metrics.budget(
                    claim.rule.label, claim.value, standing.spent + spent, claim.rule.limit_usd
                )

    def _soft(self, claim: Claim, standing: Standing) -> None:
        once = (claim.counter, claim.window_start)
        if once in self._alerted:
            return
        self._alerted.add(once)
        self._alert(
            BudgetAlert(
                budget=claim.rule.label,
                scope=claim.rule.scope,
                value=claim.value,
                spent_usd=standing.spent,
                reserved_usd=standing.reserved,
                limit_usd=claim.rule.limit_usd,
                resets_at=claim.resets_at,
            )
        )

    def _outage(self, err: Exception) -> None:
        if not self._failing:
            log.warning("budget store unavailable (%s): calls go ahead unbudgeted", type(err).__name__)
        self._failing = True


class _Settle(StreamObserver):
    def __init__(
        self, budget: Budget, hold: str, claimed: Sequence[Claim], standings: Sequence[Standing]
    ) -> None:
        self._budget = budget
        self._hold = hold
        self._claimed = claimed
        self._standings = standings

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if error is None and stream.done:
            spent = self._budget.cost_of(stream.target, stream.final().usage)
            await self._budget.settle(self._hold, self._claimed, spent)
            self._budget.report(self._claimed, self._standings, spent)
        else:
            await self._budget.release(self._hold)


def _refusal(claim: Claim, standing: Standing, amount: float, now: float) -> BudgetExceeded:
    rule = claim.rule
    resets = (
        f"it resets at {datetime.fromtimestamp(claim.resets_at, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        if claim.resets_at is not None
        else "it never resets (a total budget)"
    )
    return BudgetExceeded(
        f"budget {rule.label!r} ({rule.scope}={claim.value}, {rule.window}) is exhausted: spent"
        f" {standing.spent:.6f} USD (+{standing.reserved:.6f} reserved by calls in flight) of"
        f" {rule.limit_usd:.6f} USD; this call may cost up to {amount:.6f} USD; {resets}",
        retry_after=None if claim.resets_at is None else max(1.0, claim.resets_at - now),
        should_retry=False,
    )


def _describe(claim: Claim, standing: Standing) -> dict[str, Any]:
    rule = claim.rule
    return {
        "name": rule.label,
        "scope": rule.scope,
        "value": claim.value,
        "window": rule.window,
        "mode": rule.mode,
        "limit_usd": rule.limit_usd,
        "spent_usd": standing.spent,
        "reserved_usd": standing.reserved,
        "remaining_usd": max(0.0, rule.limit_usd - standing.spent - standing.reserved),
        "resets_at": claim.resets_at,
    }
