"""Virtual keys in PostgreSQL: the :class:`~llmrelay.keys.store.KeyStore` contract for replicas
that share one database (table ``virtual_keys``, created by :mod:`llmrelay.stores.pg_migrations`).

As in SQLite, a change is one ``UPDATE ... WHERE version = $n`` statement, so compare-and-set is
atomic across connections, processes and replicas; lookups by current or previous hash use an index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from llmrelay.errors import Conflict
from llmrelay.keys.model import VirtualKey
from llmrelay.keys.store import next_version
from llmrelay.stores.postgres import PgPool

if TYPE_CHECKING:
    import asyncpg


class PostgresKeyStore:
    def __init__(self, url: str) -> None:
        self._pool = PgPool(url, what="key store", max_size=2)

    async def open(self) -> None:
        await self._pool.open()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def ping(self) -> bool:
        return await self._pool.ping()

    @property
    def _db(self) -> asyncpg.Pool:
        return self._pool.db

    async def by_hash(self, digest: str) -> VirtualKey | None:
        return await self._one(
            "SELECT record FROM virtual_keys WHERE hash = $1 OR previous_hash = $1", digest
        )

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._one("SELECT record FROM virtual_keys WHERE id = $1", key_id)

    async def list(self) -> list[VirtualKey]:
        rows = await self._db.fetch("SELECT record FROM virtual_keys ORDER BY created")
        return [_decode(row[0]) for row in rows]

    async def insert(self, key: VirtualKey) -> None:
        import asyncpg

        try:
            await self._db.execute(
                "INSERT INTO virtual_keys (id, hash, previous_hash, record, version)"
                " VALUES ($1, $2, $3, $4, $5)",
                key.id,
                key.hash,
                key.previous_hash,
                msgspec.json.encode(key),
                key.version,
            )
        except asyncpg.UniqueViolationError as err:
            raise Conflict(f"a key with id {key.id} or the same secret exists", code="key_exists") from err

    async def compare_and_set(self, current: VirtualKey, new: VirtualKey) -> VirtualKey | None:
        stored = next_version(current, new)
        status = await self._db.execute(
            "UPDATE virtual_keys SET hash = $1, previous_hash = $2, record = $3, version = $4"
            " WHERE id = $5 AND version = $6",
            stored.hash,
            stored.previous_hash,
            msgspec.json.encode(stored),
            stored.version,
            current.id,
            current.version,
        )
        return stored if status == "UPDATE 1" else None

    async def _one(self, sql: str, arg: str) -> VirtualKey | None:
        row = await self._db.fetchrow(sql, arg)
        return _decode(row[0]) if row else None


def _decode(raw: bytes) -> VirtualKey:
    return msgspec.json.decode(raw, type=VirtualKey)
