"""Embedded SQLite state: the zero-setup default for KV records and virtual keys.

One ``aiosqlite`` connection per store (its own thread, so the event loop never blocks), WAL mode
so readers do not wait on the writer. Many coroutines share that connection, so every read runs
to its end in one call (``execute_fetchall``), never a cursor held across an ``await``: a write
that ran on the connection between such a cursor's steps would run inside the read's snapshot,
and SQLite refuses it at once, busy timeout or not, once another connection has written since.

Several worker processes may share the file: SQLite serialises their writes. Each KV namespace is
its own table (``kv_<namespace>``).

Expired rows are invisible at once (every read checks ``expires``; a claim replaces an expired row
in the same statement) and deleted later, in bounded batches: at most ``purge_batch`` rows, found
through the index on ``expires``, at most every ``purge_every`` seconds (sooner while a full batch
shows a backlog). No write ever scans the table, whatever its size.

The ``max_entries`` cap is checked at the same pace (one ``count(*)``), so a namespace may briefly
run over it; the excess goes soonest-to-expire first (oldest-written, when a namespace uses one
TTL), in batches. Claims (rows written by ``set_if_absent`` and not yet overwritten by ``set``)
and rows without a TTL are never evicted: claims end with their lease. No byte cap: the disk is
the bound. ``count(*)`` would cost a few milliseconds at 200,000 rows: once per ``purge_every``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite

from llmrelay.clock import Clock
from llmrelay.stores.sqlite_file import BUSY_TIMEOUT_MS, open_file


def sqlite_path(url: str) -> Path:
    """``sqlite:///relative.db`` or ``sqlite:////abs/path.db`` (SQLAlchemy's convention)."""
    return Path(url.removeprefix("sqlite:///"))


async def connect(path: Path) -> aiosqlite.Connection:
    """Open ``path`` (its directory must exist). The file is put in WAL mode first, on a worker
    thread (:func:`llmrelay.stores.sqlite_file.open_file`, which retries while another store
    holds the lock); the connection then only sets its own busy timeout and sync level. One that
    fails to is closed, so no aiosqlite thread outlives a failed start (it would keep the
    process from exiting)."""
    (await asyncio.to_thread(open_file, path)).close()
    db = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await db.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await db.close()
        raise
    return db


class SqliteConnection:
    """One store's aiosqlite connection: opened (and its tables set up) once, closed once, also
    when the setup fails, pinged for readiness. The key store and the audit log each hold one."""

    def __init__(
        self, path: Path, *, what: str, setup: Callable[[aiosqlite.Connection], Awaitable[None]]
    ) -> None:
        self._path = path
        self._what = what
        self._setup = setup
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self._db is None:
            db = await connect(self._path)
            try:
                await self._setup(db)
            except BaseException:
                await db.close()
                raise
            self._db = db

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"{self._what} used before open()")
        return self._db

    async def ping(self) -> bool:
        await self.db.execute("SELECT 1")
        return True


class SqliteKV:
    def __init__(
        self,
        path: Path,
        clock: Clock,
        *,
        namespace: str = "default",
        max_entries: int | None = None,
        purge_batch: int = 500,
        purge_every: float = 1.0,
    ) -> None:
        self._path = path
        self._clock = clock
        self._table = f"kv_{namespace}"  # the namespace is validated by open_kv
        self._max_entries = max_entries
        self._purge_batch = purge_batch
        self._purge_every = purge_every
        self._next_purge = float("-inf")
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self._db is None:
            self._db = await connect(self._path)
            t = self._table
            await self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {t} ("
                " key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL,"
                " claimed INTEGER NOT NULL DEFAULT 0)"
            )
            await self._db.execute(f"CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires)")

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SqliteKV used before open()")
        return self._db

    async def ping(self) -> bool:
        await self.db.execute("SELECT 1")
        return True

    async def get(self, key: str) -> bytes | None:
        rows = list(
            await self.db.execute_fetchall(
                f"SELECT value FROM {self._table} WHERE key = ? AND (expires IS NULL OR expires > ?)",
                (key, self._clock.wall()),
            )
        )
        return bytes(rows[0][0]) if rows else None

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self._maintain()
        await self.db.execute(
            f"INSERT INTO {self._table} (key, value, expires, claimed) VALUES (?, ?, ?, 0)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires,"
            " claimed = 0",
            (key, value, self._expiry(ttl)),
        )

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        await self._maintain()
        t = self._table
        # One statement, so atomic across connections and processes: insert, or take over a row
        # that has expired but not been purged yet.
        cursor = await self.db.execute(
            f"INSERT INTO {t} (key, value, expires, claimed) VALUES (?, ?, ?, 1)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires,"
            f" claimed = 1 WHERE {t}.expires IS NOT NULL AND {t}.expires <= ?",
            (key, value, self._expiry(ttl), self._clock.wall()),
        )
        return cursor.rowcount == 1

    async def delete(self, key: str) -> None:
        await self.db.execute(f"DELETE FROM {self._table} WHERE key = ?", (key,))

    async def _maintain(self) -> None:
        """Purge one bounded batch of expired rows (and of excess rows, under a cap), if due."""
        now = self._clock.now()
        if now < self._next_purge:
            return
        t, batch = self._table, self._purge_batch
        cursor = await self.db.execute(
            f"DELETE FROM {t} WHERE rowid IN"
            f" (SELECT rowid FROM {t} WHERE expires <= ? ORDER BY expires LIMIT ?)",
            (self._clock.wall(), batch),
        )
        backlog = cursor.rowcount >= batch
        if self._max_entries is not None and not backlog:
            backlog = await self._evict_excess(self._max_entries)
        self._next_purge = now if backlog else now + self._purge_every

    async def _evict_excess(self, cap: int) -> bool:
        t, batch = self._table, self._purge_batch
        # count(*) walks the smallest index: fine once per purge_every, never per write.
        rows = list(await self.db.execute_fetchall(f"SELECT count(*) FROM {t}"))
        excess = min(batch, (rows[0][0] if rows else 0) - cap)
        if excess <= 0:
            return False
        cursor = await self.db.execute(
            f"DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t}"
            " WHERE claimed = 0 AND expires IS NOT NULL ORDER BY expires LIMIT ?)",
            (excess,),
        )
        return cursor.rowcount >= batch

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock.wall() + ttl
