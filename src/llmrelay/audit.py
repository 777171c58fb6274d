"""The audit log: who changed what, when. Key changes (create, rotate, revoke) and configuration
changes (a server starting with a config different from the last one seen) are appended here, in
the state store, and read back through ``GET /admin/audit``.

Entries are append-only and carry no secrets: the actor is ``master``, a key id (an
``admin``-scoped key) or ``cli:<user>``; details hold names, ids and settings, never a secret or
its hash. A config change is recorded as the SHA-256 of the config with every secret masked, so
the entry says *that* the config changed without giving anything to guess a secret against.

An ``audit_log`` table beside the keys, in SQLite or PostgreSQL (migration 4: every replica
appends to the same log), or in memory for ``memory://`` state.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import msgspec

from llmrelay.config import Config, KeySource, Secret
from llmrelay.errors import ConfigError
from llmrelay.stores.postgres import PgPool, is_postgres
from llmrelay.stores.sqlite import SqliteConnection, sqlite_path

CONFIG_CHANGED = "config.changed"


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: float
    """Unix seconds."""
    actor: str
    action: str
    """``key.create``, ``key.rotate``, ``key.revoke``, ``config.changed``."""
    target: str | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class AuditLog(Protocol):
    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def record(
        self, *, at: float, actor: str, action: str, target: str | None, details: dict[str, Any]
    ) -> AuditEntry: ...

    async def query(
        self, *, limit: int, before: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before`` an entry id (paging), ``action`` an exact action name."""
        ...


def audit_log_for(url: str) -> AuditLog:
    if url.startswith("sqlite:"):
        return SqliteAuditLog(sqlite_path(url))
    if is_postgres(url):
        return PostgresAuditLog(url)
    if url.startswith("memory:"):
        return MemoryAuditLog()
    raise ConfigError(
        f"the audit log cannot be stored at {url.partition(':')[0]}:// (use sqlite or postgresql)"
    )


def config_digest(config: Config) -> str:
    """SHA-256 of the config with secrets masked (two configs that differ only in a secret match),
    without the port and the worker count: ``llmrelay serve --port/--workers`` set those per run."""

    def mask(value: Any) -> Any:
        if isinstance(value, Secret):
            return "***"
        if isinstance(value, KeySource):
            return repr(value)  # a file's path or a command's program, never a key
        raise NotImplementedError(type(value))

    shown = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, port=1, workers=1))
    return hashlib.sha256(msgspec.json.encode(shown, enc_hook=mask, order="sorted")).hexdigest()


async def record_config(log: AuditLog, config: Config, *, at: float) -> AuditEntry | None:
    """Append ``config.changed`` when ``config`` differs from the last one recorded (or none was)."""
    digest = config_digest(config)
    last = await log.query(limit=1, action=CONFIG_CHANGED)
    if last and last[0].details.get("digest") == digest:
        return None
    previous = last[0].details.get("digest") if last else None
    return await log.record(
        at=at,
        actor="server",
        action=CONFIG_CHANGED,
        target=None,
        details={"digest": digest, "previous": previous},
    )


class MemoryAuditLog:
    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def record(
        self, *, at: float, actor: str, action: str, target: str | None, details: dict[str, Any]
    ) -> AuditEntry:
        entry = AuditEntry(
            id=len(self._entries) + 1, at=at, actor=actor, action=action, target=target, details=details
        )
        self._entries.append(entry)
        return entry

    async def query(
        self, *, limit: int, before: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        found = [
            e
            for e in reversed(self._entries)
            if (before is None or e.id < before) and (action is None or e.action == action)
        ]
        return found[:limit]


async def _create_table(db: aiosqlite.Connection) -> None:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT,"
        " details BLOB NOT NULL)"
    )
    await db.execute("CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, id)")


class SqliteAuditLog:
    def __init__(self, path: Path) -> None:
        self._store = SqliteConnection(path, what="audit log", setup=_create_table)

    async def open(self) -> None:
        await self._store.open()

    async def aclose(self) -> None:
        await self._store.aclose()

    @property
    def _conn(self) -> aiosqlite.Connection:
        return self._store.db

    async def record(
        self, *, at: float, actor: str, action: str, target: str | None, details: dict[str, Any]
    ) -> AuditEntry:
        cursor = await self._conn.execute(
            "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (at, actor, action, target, msgspec.json.encode(details)),
        )
        assert cursor.lastrowid is not None
        return AuditEntry(
            id=cursor.lastrowid, at=at, actor=actor, action=action, target=target, details=details
        )

    async def query(
        self, *, limit: int, before: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        sql = "SELECT id, at, actor, action, target, details FROM audit_log WHERE id < ?"
        args: list[Any] = [before if before is not None else 2**62]
        if action is not None:
            sql += " AND action = ?"
            args.append(action)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        rows = await self._conn.execute_fetchall(sql, args)
        return [
            AuditEntry(
                id=r[0], at=r[1], actor=r[2], action=r[3], target=r[4], details=msgspec.json.decode(r[5])
            )
            for r in rows
        ]


class PostgresAuditLog:
    def __init__(self, url: str) -> None:
        self._pool = PgPool(url, what="audit log", max_size=2)

    async def open(self) -> None:
        await self._pool.open()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def record(
        self, *, at: float, actor: str, action: str, target: str | None, details: dict[str, Any]
    ) -> AuditEntry:
        entry_id = await self._pool.db.fetchval(
            "INSERT INTO audit_log (at, actor, action, target, details)"
            " VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
            at,
            actor,
            action,
            target,
            msgspec.json.encode(details).decode(),
        )
        return AuditEntry(id=entry_id, at=at, actor=actor, action=action, target=target, details=details)

    async def query(
        self, *, limit: int, before: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        rows = await self._pool.db.fetch(
            "SELECT id, at, actor, action, target, details::text FROM audit_log"
            " WHERE id < $1 AND ($2::text IS NULL OR action = $2) ORDER BY id DESC LIMIT $3",
            before if before is not None else 2**62,
            action,
            limit,
        )
        return [
            AuditEntry(
                id=r[0], at=r[1], actor=r[2], action=r[3], target=r[4], details=msgspec.json.decode(r[5])
            )
            for r in rows
        ]
