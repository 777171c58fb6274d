"""Embedded SQLite state: the zero-setup default for KV records and virtual keys.

One ``aiosqlite`` connection per store (its own thread, so the event loop never blocks), WAL mode
so readers do not wait on the writer, and expired rows purged lazily on write. Several worker
processes may share the file: SQLite serialises their writes.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from llmrelay.clock import Clock


def sqlite_path(url: str) -> Path:
    """``sqlite:///relative.db`` or ``sqlite:////abs/path.db`` (SQLAlchemy's convention)."""
    return Path(url.removeprefix("sqlite:///"))


async def connect(path: Path) -> aiosqlite.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA busy_timeout=5000")
    return db


class SqliteKV:
    def __init__(self, path: Path, clock: Clock) -> None:
        self._path = path
        self._clock = clock
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self._db is None:
            self._db = await connect(self._path)
            await self._db.execute(
                "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL)"
            )

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
        now = self._clock.wall()
        async with self.db.execute(
            "SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)", (key, now)
        ) as cursor:
            row = await cursor.fetchone()
        return bytes(row[0]) if row else None

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
            (key, value, self._expiry(ttl)),
        )

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        now = self._clock.wall()
        await self.db.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?", (now,))
        cursor = await self.db.execute(
            "INSERT OR IGNORE INTO kv (key, value, expires) VALUES (?, ?, ?)", (key, value, self._expiry(ttl))
        )
        return cursor.rowcount == 1

    async def delete(self, key: str) -> None:
        await self.db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock.wall() + ttl
