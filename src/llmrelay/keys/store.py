"""Where key records live. ``KeyStore`` is backend-neutral; SQLite is the embedded default.

Both backends find a key by its current or previous secret's hash through an index, and change a
record only by compare-and-set on its ``version``, so concurrent rotations and revocations (from
coroutines, worker processes or the CLI) never overwrite each other.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

import aiosqlite
import msgspec

from llmrelay.errors import Conflict
from llmrelay.keys.model import VirtualKey
from llmrelay.stores.sqlite import SqliteConnection


class KeyStore(Protocol):
    """The contract every backend keeps (tests/keys/test_key_store_contract.py checks it).

    Records change only through :meth:`compare_and_set`, so two writers that read the same
    version cannot both win: the loser re-reads and decides again (a rotation that lost to a
    revocation sees the revocation and is refused, instead of writing the key back unrevoked).
    """

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def ping(self) -> bool: ...

    async def by_hash(self, digest: str) -> VirtualKey | None:
        """The key whose current or previous secret has this hash, whatever its state (revoked,
        expired, grace over): the caller decides, and can say why a secret no longer works."""
        ...

    async def get(self, key_id: str) -> VirtualKey | None: ...

    async def list(self) -> list[VirtualKey]:
        """Every key, oldest first."""
        ...

    async def insert(self, key: VirtualKey) -> None:
        """Add a new record; :class:`Conflict` if its id or hash is taken."""
        ...

    async def compare_and_set(self, current: VirtualKey, new: VirtualKey) -> VirtualKey | None:
        """Replace the record of ``current.id`` with ``new`` if the store still holds it at
        ``current.version``; the record is stored, and returned, at ``current.version + 1``.
        ``None`` (and nothing written) if it has changed since or is gone."""
        ...


def next_version(current: VirtualKey, new: VirtualKey) -> VirtualKey:
    if new.id != current.id:
        raise ValueError(f"compare_and_set cannot change a key's id ({current.id} -> {new.id})")
    return msgspec.structs.replace(new, version=current.version + 1)


class SqliteKeyStore:
    def __init__(self, path: Path) -> None:
        self._store = SqliteConnection(path, what="key store", setup=_migrate)

    async def open(self) -> None:
        await self._store.open()

    async def aclose(self) -> None:
        await self._store.aclose()

    async def ping(self) -> bool:
        return await self._store.ping()

    @property
    def _conn(self) -> aiosqlite.Connection:
        return self._store.db

    async def by_hash(self, digest: str) -> VirtualKey | None:
        return await self._one(
            "SELECT record FROM virtual_keys WHERE hash = ? OR previous_hash = ?", (digest, digest)
        )

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._one("SELECT record FROM virtual_keys WHERE id = ?", (key_id,))

    async def list(self) -> list[VirtualKey]:
        rows = await self._conn.execute_fetchall("SELECT record FROM virtual_keys ORDER BY rowid")
        return [_decode(row[0]) for row in rows]

    async def insert(self, key: VirtualKey) -> None:
        try:
            await self._conn.execute(
                "INSERT INTO virtual_keys (id, hash, previous_hash, record, version) VALUES (?, ?, ?, ?, ?)",
                (key.id, key.hash, key.previous_hash, msgspec.json.encode(key), key.version),
            )
        except sqlite3.IntegrityError as err:
            raise Conflict(f"a key with id {key.id} or the same secret exists", code="key_exists") from err

    async def compare_and_set(self, current: VirtualKey, new: VirtualKey) -> VirtualKey | None:
        # One statement, so atomic for every connection and process sharing the file.
        stored = next_version(current, new)
        cursor = await self._conn.execute(
            "UPDATE virtual_keys SET hash = ?, previous_hash = ?, record = ?, version = ?"
            " WHERE id = ? AND version = ?",
            (
                stored.hash,
                stored.previous_hash,
                msgspec.json.encode(stored),
                stored.version,
                current.id,
                current.version,
            ),
        )
        return stored if cursor.rowcount == 1 else None

    async def _one(self, sql: str, args: tuple[str, ...]) -> VirtualKey | None:
        rows = list(await self._conn.execute_fetchall(sql, args))
        return _decode(rows[0][0]) if rows else None


async def _migrate(db: aiosqlite.Connection) -> None:
    """Create the table, or add ``version`` to one made before compare-and-set (its rows are at
    version 0, as their records say by default). Immediate, so workers opening together take turns."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS virtual_keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
            " previous_hash TEXT, record BLOB NOT NULL, version INTEGER NOT NULL DEFAULT 0)"
        )
        await db.execute("CREATE INDEX IF NOT EXISTS virtual_keys_previous ON virtual_keys (previous_hash)")
        columns = {row[1] for row in await db.execute_fetchall("PRAGMA table_info(virtual_keys)")}
        if "version" not in columns:
            await db.execute("ALTER TABLE virtual_keys ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise


def _decode(raw: bytes) -> VirtualKey:
    return msgspec.json.decode(raw, type=VirtualKey)


class MemoryKeyStore:
    """Keys in process memory: for ``memory://`` state and tests; gone when the process ends.

    Indexed by id and by every hash that finds a key (current and previous), so a lookup is a
    dict access however many keys there are. Each method runs without awaiting, so the event
    loop makes it atomic."""

    def __init__(self) -> None:
        self._keys: dict[str, VirtualKey] = {}  # by id, in insertion order
        self._ids: dict[str, str] = {}  # hash or previous hash -> key id

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def by_hash(self, digest: str) -> VirtualKey | None:
        key_id = self._ids.get(digest)
        return None if key_id is None else self._keys[key_id]

    async def get(self, key_id: str) -> VirtualKey | None:
        return self._keys.get(key_id)

    async def list(self) -> list[VirtualKey]:
        return list(self._keys.values())

    async def insert(self, key: VirtualKey) -> None:
        if key.id in self._keys or key.hash in self._ids:
            raise Conflict(f"a key with id {key.id} or the same secret exists", code="key_exists")
        self._keys[key.id] = key
        self._index(key)

    async def compare_and_set(self, current: VirtualKey, new: VirtualKey) -> VirtualKey | None:
        stored = next_version(current, new)
        held = self._keys.get(current.id)
        if held is None or held.version != current.version:
            return None
        for digest in (held.hash, held.previous_hash):
            if digest is not None:
                del self._ids[digest]
        self._keys[stored.id] = stored
        self._index(stored)
        return stored

    def _index(self, key: VirtualKey) -> None:
        self._ids[key.hash] = key.id
        if key.previous_hash is not None:
            self._ids[key.previous_hash] = key.id
