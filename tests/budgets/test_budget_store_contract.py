"""One contract for every budget store (memory, SQLite, real PostgreSQL): reserve, settle, release,
expiry of a left-behind reservation, windows kept apart, and no over-admission under concurrency,
also between two store instances sharing one database (two processes, two replicas)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.budgets.decide import Standing
from llmrelay.budgets.rules import BudgetConfig, Claim, claims
from llmrelay.budgets.store import BudgetStore, open_budget_store
from llmrelay.clock import FakeClock
from llmrelay.context import Context
from tests.pg import pg_schema

NOW = 1_764_669_600.0  # 2025-12-02T10:00:00Z
DAY = 86_400.0


class Backend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[BudgetStore] = []

    async def store(self) -> BudgetStore:
        """Another instance on the same database (memory: the same instance, it is one process)."""
        if self.url == "memory://" and self.opened:
            return self.opened[0]
        store = open_budget_store(self.url)
        await store.open()
        self.opened.append(store)
        return store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async def run(url: str) -> AsyncIterator[Backend]:
        found = Backend(url)
        try:
            yield found
        finally:
            for store in found.opened:
                await store.aclose()

    if request.param == "postgres":
        async with pg_schema("budget") as url:
            async for found in run(url):
                yield found
        return
    async for found in run("memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'b.db'}"):
        yield found


def team_claims(limit: float, at: float = NOW, window: str = "daily") -> list[Claim]:
    rule = BudgetConfig(scope="team", match="*", limit_usd=limit, window=window)  # type: ignore[arg-type]
    return claims((rule,), Context(clock=FakeClock(), team="search"), at)


async def test_reserve_settle_release(backend: Backend) -> None:
    store = await backend.store()
    claimed = team_claims(10.0)
    counter = claimed[0].counter
    assert (await store.reserve("h1", claimed, 4.0, now=NOW, expires_at=NOW + 60)).allowed
    assert (await store.reserve("h2", claimed, 4.0, now=NOW, expires_at=NOW + 60)).allowed
    refused = await store.reserve("h3", claimed, 4.0, now=NOW, expires_at=NOW + 60)
    assert not refused.allowed and refused.standing == Standing(0.0, 8.0)
    await store.settle("h1", claimed, 1.5)  # the actual cost replaces the reservation
    await store.release("h2")  # a failed call
    assert (await store.standings(claimed, now=NOW))[counter] == Standing(1.5, 0.0)
    assert (await store.reserve("h4", claimed, 8.5, now=NOW, expires_at=NOW + 60)).allowed
    assert not (await store.reserve("h5", claimed, 0.01, now=NOW, expires_at=NOW + 60)).allowed


async def test_a_left_behind_reservation_expires(backend: Backend) -> None:
    store = await backend.store()
    claimed = team_claims(1.0)
    assert (await store.reserve("crashed", claimed, 1.0, now=NOW, expires_at=NOW + 30)).allowed
    assert not (await store.reserve("b", claimed, 0.5, now=NOW + 29, expires_at=NOW + 90)).allowed
    assert (await store.reserve("c", claimed, 0.5, now=NOW + 31, expires_at=NOW + 90)).allowed
    await store.settle("crashed", claimed, 0.25)  # a settle that comes after all is still debited
    assert (await store.standings(claimed, now=NOW + 31))[claimed[0].counter] == Standing(0.25, 0.5)


async def test_a_new_window_starts_at_zero(backend: Backend) -> None:
    store = await backend.store()
    today = team_claims(1.0)
    assert (await store.reserve("a", today, 1.0, now=NOW, expires_at=NOW + 60)).allowed
    await store.settle("a", today, 1.0)
    assert not (await store.reserve("b", today, 0.1, now=NOW, expires_at=NOW + 60)).allowed
    tomorrow = team_claims(1.0, at=NOW + DAY)
    assert (await store.reserve("c", tomorrow, 0.1, now=NOW + DAY, expires_at=NOW + DAY + 60)).allowed
    ever = team_claims(1.0, window="total")
    assert (await store.standings(ever, now=NOW))[ever[0].counter] == Standing(0.0, 0.0)


@pytest.mark.parametrize("instances", [1, 2])
async def test_concurrent_reservations_never_over_admit(backend: Backend, instances: int) -> None:
    stores = [await backend.store() for _ in range(instances)]
    claimed = team_claims(5.0)

    verdicts = await asyncio.gather(
        *(
            stores[i % instances].reserve(f"h{i}", claimed, 1.0, now=NOW, expires_at=NOW + 60)
            for i in range(40)
        )
    )
    assert sum(v.allowed for v in verdicts) == 5
