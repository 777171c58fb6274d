"""Where budget spend and reservations live, with the one atomic step budgets need.

``reserve`` reads the claimed budgets' standings, decides (:func:`~llmrelay.budgets.decide.decide`)
and, when the call may go ahead, records its reservation, all in one atomic step: a process-local
step in memory, one ``BEGIN IMMEDIATE`` transaction in SQLite (serialised across the processes
sharing the file), one transaction holding the counters' row locks in PostgreSQL (serialised
across replicas). ``settle`` drops the reservation and adds the actual cost to the window the call
was admitted in; ``release`` only drops it (a failed call). A reservation carries an expiry, so
one left behind by a crashed process stops counting on its own.

Tables (SQLite here, PostgreSQL in migration 3): ``budget_spend (counter, window_start, spent)``
and ``budget_holds (hold_id, counter, window_start, amount, expires_at)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from llmrelay.budgets.decide import Standing, Verdict, decide
from llmrelay.budgets.rules import Claim
from llmrelay.errors import ConfigError
from llmrelay.stores.sqlite_thread import SqliteThread, immediate


class BudgetStore(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ping(self) -> bool: ...

    async def reserve(
        self, hold_id: str, claims: Sequence[Claim], amount: float, *, now: float, expires_at: float
    ) -> Verdict: ...

    async def settle(self, hold_id: str, claims: Sequence[Claim], cost: float) -> None: ...

    async def release(self, hold_id: str) -> None: ...

    async def standings(self, claims: Sequence[Claim], *, now: float) -> dict[str, Standing]: ...


def open_budget_store(url: str) -> BudgetStore:
    scheme = url.partition("://")[0]
    if scheme == "memory":
        return MemoryBudgetStore()
    if scheme == "sqlite":
        from llmrelay.stores.sqlite import sqlite_path

        return SqliteBudgetStore(sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        from llmrelay.budgets.postgres import PostgresBudgetStore

        return PostgresBudgetStore(url)
    raise ConfigError(f"budgets cannot be kept at {scheme}:// (memory, sqlite, postgresql)")


class MemoryBudgetStore:
    """One process's budgets (``memory://`` state): each method runs without awaiting, so atomic."""

    def __init__(self) -> None:
        self._spent: dict[tuple[str, float], float] = {}
        self._holds: dict[str, list[tuple[str, float, float, float]]] = {}  # id -> (counter, ws, amount, exp)

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def reserve(
        self, hold_id: str, claims: Sequence[Claim], amount: float, *, now: float, expires_at: float
    ) -> Verdict:
        verdict = decide(claims, self._standings(claims, now), amount)
        if verdict.allowed:
            self._holds[hold_id] = [(c.counter, c.window_start, amount, expires_at) for c in claims]
        return verdict

    async def settle(self, hold_id: str, claims: Sequence[Claim], cost: float) -> None:
        self._holds.pop(hold_id, None)
        for claim in claims:
            where = (claim.counter, claim.window_start)
            self._spent[where] = self._spent.get(where, 0.0) + cost

    async def release(self, hold_id: str) -> None:
        self._holds.pop(hold_id, None)

    async def standings(self, claims: Sequence[Claim], *, now: float) -> dict[str, Standing]:
        return self._standings(claims, now)

    def _standings(self, claims: Sequence[Claim], now: float) -> dict[str, Standing]:
        reserved: dict[tuple[str, float], float] = {}
        for hold in self._holds.values():
            for counter, start, amount, expires in hold:
                if expires > now:
                    reserved[(counter, start)] = reserved.get((counter, start), 0.0) + amount
        return {
            c.counter: Standing(
                self._spent.get((c.counter, c.window_start), 0.0),
                reserved.get((c.counter, c.window_start), 0.0),
            )
            for c in claims
        }


_SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS budget_spend (counter TEXT NOT NULL, window_start REAL NOT NULL,"
    " spent REAL NOT NULL DEFAULT 0, PRIMARY KEY (counter, window_start))",
    "CREATE TABLE IF NOT EXISTS budget_holds (hold_id TEXT NOT NULL, counter TEXT NOT NULL,"
    " window_start REAL NOT NULL, amount REAL NOT NULL, expires_at REAL NOT NULL,"
    " PRIMARY KEY (hold_id, counter))",
    "CREATE INDEX IF NOT EXISTS budget_holds_counter ON budget_holds (counter, window_start)",
)


class SqliteBudgetStore:
    """Each reserve or settle is one transaction run on the store's own thread
    (:class:`~llmrelay.stores.sqlite_thread.SqliteThread`): one thread hop per call, and
    ``BEGIN IMMEDIATE`` serialises it with the other processes sharing the file."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteThread(path, schema=_SQLITE_TABLES, name="llmrelay-budgets")

    async def open(self) -> None:
        await self._db.open()

    async def aclose(self) -> None:
        await self._db.aclose()

    async def ping(self) -> bool:
        await self._db.run(lambda db: db.execute("SELECT 1").fetchone())
        return True

    async def reserve(
        self, hold_id: str, claims: Sequence[Claim], amount: float, *, now: float, expires_at: float
    ) -> Verdict:
        def step(db: sqlite3.Connection) -> Verdict:
            with immediate(db):
                verdict = decide(claims, _standings(db, claims, now), amount)
                if verdict.allowed:
                    # These counters' expired reservations (a crashed process's) go now.
                    db.executemany(
                        "DELETE FROM budget_holds WHERE counter = ? AND expires_at <= ?",
                        [(c.counter, now) for c in claims],
                    )
                    db.executemany(
                        "INSERT INTO budget_holds VALUES (?, ?, ?, ?, ?)",
                        [(hold_id, c.counter, c.window_start, amount, expires_at) for c in claims],
                    )
            return verdict

        return await self._db.run(step)

    async def settle(self, hold_id: str, claims: Sequence[Claim], cost: float) -> None:
        def step(db: sqlite3.Connection) -> None:
            with immediate(db):
                db.execute("DELETE FROM budget_holds WHERE hold_id = ?", (hold_id,))
                db.executemany(
                    "INSERT INTO budget_spend VALUES (?, ?, ?) ON CONFLICT (counter, window_start)"
                    " DO UPDATE SET spent = spent + excluded.spent",
                    [(c.counter, c.window_start, cost) for c in claims],
                )

        await self._db.run(step)

    async def release(self, hold_id: str) -> None:
        await self._db.run(lambda db: db.execute("DELETE FROM budget_holds WHERE hold_id = ?", (hold_id,)))

    async def standings(self, claims: Sequence[Claim], *, now: float) -> dict[str, Standing]:
        return await self._db.run(lambda db: _standings(db, claims, now))


def _standings(db: sqlite3.Connection, claims: Sequence[Claim], now: float) -> dict[str, Standing]:
    found = {}
    for claim in claims:
        where = (claim.counter, claim.window_start)
        row = db.execute(
            "SELECT (SELECT spent FROM budget_spend WHERE counter = ? AND window_start = ?),"
            " (SELECT sum(amount) FROM budget_holds WHERE counter = ? AND window_start = ?"
            " AND expires_at > ?)",
            (*where, *where, now),
        ).fetchone()
        spent, reserved = row if row else (None, None)
        found[claim.counter] = Standing(spent or 0.0, reserved or 0.0)
    return found
