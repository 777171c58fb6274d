"""Where key records live. ``KeyStore`` is backend-neutral; SQLite is the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import aiosqlite
import msgspec

from llmrelay.keys.model import VirtualKey
from llmrelay.stores.sqlite import connect


class KeyStore(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ping(self) -> bool: ...

    async def by_hash(self, digest: str) -> VirtualKey | None:
        """The key whose current or (in grace) previous secret has this hash."""
        ...

    async def get(self, key_id: str) -> VirtualKey | None: ...

    async def list(self) -> list[VirtualKey]: ...

    async def put(self, key: VirtualKey) -> None:
        """Insert or replace the record with this id."""
        ...


class SqliteKeyStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        if self._db is None:
            self._db = await connect(self._path)
            await self._db.execute(
                "CREATE TABLE IF NOT EXISTS virtual_keys ("
                " id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, previous_hash TEXT, record BLOB NOT NULL)"
            )
            await self._db.execute(
                "CREATE INDEX IF NOT EXISTS virtual_keys_previous ON virtual_keys (previous_hash)"
            )

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("key store used before open()")
        return self._db

    async def ping(self) -> bool:
        await self._conn.execute("SELECT 1")
        return True

    async def by_hash(self, digest: str) -> VirtualKey | None:
        return await self._one(
            "SELECT record FROM virtual_keys WHERE hash = ? OR previous_hash = ?", (digest, digest)
        )

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._one("SELECT record FROM virtual_keys WHERE id = ?", (key_id,))

    async def list(self) -> list[VirtualKey]:
        async with self._conn.execute("SELECT record FROM virtual_keys ORDER BY rowid") as cursor:
            return [_decode(row[0]) for row in await cursor.fetchall()]

    async def put(self, key: VirtualKey) -> None:
        await self._conn.execute(
            "INSERT OR REPLACE INTO virtual_keys (id, hash, previous_hash, record) VALUES (?, ?, ?, ?)",
            (key.id, key.hash, key.previous_hash, msgspec.json.encode(key)),
        )

    async def _one(self, sql: str, args: tuple[str, ...]) -> VirtualKey | None:
        async with self._conn.execute(sql, args) as cursor:
            row = await cursor.fetchone()
        return _decode(row[0]) if row else None


def _decode(raw: bytes) -> VirtualKey:
    return msgspec.json.decode(raw, type=VirtualKey)


class MemoryKeyStore:
    """Keys in process memory: for ``memory://`` state and tests; gone when the process ends."""

    def __init__(self) -> None:
        self._keys: dict[str, VirtualKey] = {}

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def by_hash(self, digest: str) -> VirtualKey | None:
        return next((k for k in self._keys.values() if digest in (k.hash, k.previous_hash)), None)

    async def get(self, key_id: str) -> VirtualKey | None:
        return self._keys.get(key_id)

    async def list(self) -> list[VirtualKey]:
        return list(self._keys.values())

    async def put(self, key: VirtualKey) -> None:
        self._keys[key.id] = key
