"""The Ledger protocol (record, sum by key and window) and its backends, chosen by the state URL.

``write`` stores a batch of rows (one round trip: SQLite ``executemany`` in one transaction,
PostgreSQL ``COPY``); ``usage`` answers a :class:`~llmrelay.ledger.entry.UsageQuery` with the
report rows (:mod:`llmrelay.ledger.query`). Memory keeps rows for ``memory://`` state (the
library, tests). Rows are never updated or deleted by llmrelay: the ledger is append-only.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from llmrelay.errors import ConfigError
from llmrelay.ledger.entry import LedgerEntry, UsageQuery, UsageRow
from llmrelay.ledger.query import usage_row, usage_sql
from llmrelay.stores.postgres import PgPool
from llmrelay.stores.sqlite_thread import SqliteThread, immediate

if TYPE_CHECKING:
    import asyncpg

_COLUMNS = (
    "request_id",
    "at",
    "key_id",
    "user_id",
    "team",
    "tags",
    "alias",
    "target",
    "model",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "cost",
    "status",
)
_encode = msgspec.json.Encoder().encode


class LedgerStore(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ping(self) -> bool: ...

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        """Store every row or none (a failed batch is retried whole by the writer)."""
        ...

    async def usage(self, query: UsageQuery) -> list[UsageRow]: ...


def open_ledger(url: str) -> LedgerStore:
    scheme = url.partition("://")[0]
    if scheme == "memory":
        return MemoryLedger()
    if scheme == "sqlite":
        from llmrelay.stores.sqlite import sqlite_path

        return SqliteLedger(sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        return PostgresLedger(url)
    raise ConfigError(f"the ledger cannot be stored at {scheme}:// (memory, sqlite, postgresql)")


def _row(entry: LedgerEntry) -> tuple[object, ...]:
    return (
        entry.request_id,
        entry.at,
        entry.key_id,
        entry.user,
        entry.team,
        _encode(entry.tags).decode(),
        entry.alias,
        entry.target,
        entry.model,
        entry.input_tokens,
        entry.cached_input_tokens,
        entry.cache_write_input_tokens,
        entry.output_tokens,
        entry.cost,
        entry.status,
    )


class MemoryLedger:
    """The latest ``max_rows`` rows (older ones go first: ``memory://`` state is for development
    and tests, and must not grow without bound); reports run the same SQL on a copy."""

    def __init__(self, max_rows: int = 100_000) -> None:
        self.entries: deque[LedgerEntry] = deque(maxlen=max_rows)

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        self.entries.extend(entries)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        # The report's rules live in one place (the SQL): run it on an in-memory SQLite copy.
        db = sqlite3.connect(":memory:")
        try:
            db.execute(_SQLITE_TABLE)
            db.executemany(_SQLITE_INSERT, [_row(e) for e in self.entries])
            sql, args = usage_sql(query, "sqlite")
            return [usage_row(row) for row in db.execute(sql, args).fetchall()]
        finally:
            db.close()


_SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS ledger (request_id TEXT NOT NULL, at REAL NOT NULL, key_id TEXT,"
    " user_id TEXT, team TEXT, tags TEXT NOT NULL, alias TEXT, target TEXT, model TEXT,"
    " input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,"
    " cache_write_input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost REAL,"
    " status INTEGER NOT NULL)"
)
_SQLITE_INSERT = f"INSERT INTO ledger ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


class SqliteLedger:
    """A batch is one transaction on the store's own thread (one hop per batch)."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteThread(
            path,
            schema=(_SQLITE_TABLE, "CREATE INDEX IF NOT EXISTS ledger_at ON ledger (at)"),
            name="llmrelay-ledger",
        )

    async def open(self) -> None:
        await self._db.open()

    async def aclose(self) -> None:
        await self._db.aclose()

    async def ping(self) -> bool:
        await self._db.run(lambda db: db.execute("SELECT 1").fetchone())
        return True

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        rows = [_row(e) for e in entries]

        def step(db: sqlite3.Connection) -> None:
            with immediate(db):
                db.executemany(_SQLITE_INSERT, rows)

        await self._db.run(step)

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        sql, args = usage_sql(query, "sqlite")
        rows = await self._db.run(lambda db: db.execute(sql, args).fetchall())
        return [usage_row(row) for row in rows]


_ACQUIRE_TIMEOUT = 5.0
"""Seconds a batch waits for a pooled connection before it counts as a failed write."""


class PostgresLedger:
    """Table ``ledger`` (migration 2): batches go in with ``COPY``, one round trip each."""

    def __init__(self, url: str) -> None:
        self._pool = PgPool(url, what="ledger", max_size=2)

    async def open(self) -> None:
        await self._pool.open()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def ping(self) -> bool:
        return await self._pool.ping()

    @property
    def _db(self) -> asyncpg.Pool:
        return self._pool.db

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        # A bounded wait for a connection: while PostgreSQL is unreachable the pool would wait for
        # its reconnects forever, and the writer would neither log the outage nor back off.
        async with self._db.acquire(timeout=_ACQUIRE_TIMEOUT) as conn:
            await conn.copy_records_to_table("ledger", columns=_COLUMNS, records=[_row(e) for e in entries])

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        sql, args = usage_sql(query, "postgres")
        return [usage_row(row) for row in await self._db.fetch(sql, *args)]
