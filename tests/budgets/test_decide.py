"""Budget windows and the admission decision as pure tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmrelay.budgets.decide import Standing, decide
from llmrelay.budgets.rules import BudgetConfig, Window, claims, window_bounds
from llmrelay.clock import FakeClock
from llmrelay.context import Context


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("window", "at", "start", "resets"),
    [
        ("daily", "2026-12-02T09:30:00", "2026-12-02T00:00:00", "2026-12-03T00:00:00"),
        ("daily", "2026-12-02T00:00:00", "2026-12-02T00:00:00", "2026-12-03T00:00:00"),
        ("daily", "2026-12-31T23:59:59", "2026-12-31T00:00:00", "2027-01-01T00:00:00"),
        ("monthly", "2026-12-02T09:30:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("monthly", "2026-02-28T23:00:00", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
        ("monthly", "2026-11-30T23:59:59", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
    ],
)
def test_windows(window: Window, at: str, start: str, resets: str) -> None:
    assert window_bounds(window, ts(at)) == (ts(start), ts(resets))


def test_a_total_window_never_resets() -> None:
    assert window_bounds("total", ts("2026-12-02T09:30:00")) == (0.0, None)


def rule(**fields: object) -> BudgetConfig:
    return BudgetConfig(**{"scope": "team", "match": "search", "limit_usd": 10.0, **fields})  # type: ignore[arg-type]


CTX = Context(
    clock=FakeClock(),
    principal="key_1",
    user="ann",
    team="search",
    tags={"feature": "ask", "customer": "acme"},
)


@pytest.mark.parametrize(
    ("rules", "values"),
    [
        ([rule()], ["search"]),
        ([rule(match="ads")], []),
        ([rule(scope="key", match="*")], ["key_1"]),
        ([rule(scope="user", match="bob")], []),
        ([rule(scope="tag:feature", match="ask"), rule(scope="tag:customer", match="*")], ["acme", "ask"]),
        ([rule(scope="tag:missing")], []),
    ],
)
def test_which_budgets_a_call_counts_against(rules: list[BudgetConfig], values: list[str]) -> None:
    found = claims(tuple(rules), CTX, ts("2026-12-02T09:00:00"))
    assert sorted(c.value for c in found) == values
    assert [c.counter for c in found] == sorted(c.counter for c in found)  # the lock order


def test_each_value_of_a_star_budget_has_its_own_counter() -> None:
    star = (rule(scope="key", match="*"),)
    other = CTX.replace(principal="key_2")
    now = ts("2026-12-02T09:00:00")
    assert claims(star, CTX, now)[0].counter != claims(star, other, now)[0].counter


@pytest.mark.parametrize(
    ("mode", "spent", "reserved", "amount", "allowed", "alerts"),
    [
        ("hard", 0.0, 0.0, 10.0, True, 0),  # exactly the limit fits
        ("hard", 4.0, 5.0, 1.0, True, 0),
        ("hard", 4.0, 5.0, 1.01, False, 0),  # reservations of calls in flight count
        ("hard", 10.0, 0.0, 0.0, True, 0),  # a call that costs nothing known at the limit
        ("hard", 10.5, 0.0, 0.0, False, 0),
        ("soft", 9.0, 0.0, 2.0, True, 1),  # soft: through, with an alert
        ("soft", 1.0, 0.0, 2.0, True, 0),
    ],
)
def test_decide(mode: str, spent: float, reserved: float, amount: float, allowed: bool, alerts: int) -> None:
    [claim] = claims((rule(mode=mode),), CTX, ts("2026-12-02T09:00:00"))
    verdict = decide([claim], {claim.counter: Standing(spent, reserved)}, amount)
    assert verdict.allowed is allowed
    assert len(verdict.alerts) == alerts
    if not allowed:
        assert verdict.refused_by == claim and verdict.standing == Standing(spent, reserved)


def test_the_first_hard_budget_refuses_even_when_another_is_soft() -> None:
    both = (rule(mode="soft", name="a"), rule(scope="key", match="key_1", limit_usd=1.0, name="b"))
    found = claims(both, CTX, ts("2026-12-02T09:00:00"))
    verdict = decide(found, {}, 2.0)
    assert verdict.refused_by is not None and verdict.refused_by.rule.label == "b"
