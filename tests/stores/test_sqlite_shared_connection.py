"""One aiosqlite connection serves many coroutines at once: a read must never leave a statement
open across an ``await``, or a write on the same connection runs inside that read's snapshot and
SQLite refuses it at once (``database is locked``, busy timeout or not) as soon as another
connection to the file has written since. The fuzz suite met this as a 500 on ``POST /admin/keys``
while ``GET /admin/keys`` and the ledger ran beside it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from llmrelay.audit import SqliteAuditLog
from llmrelay.clock import SystemClock
from llmrelay.keys.model import VirtualKey
from llmrelay.keys.store import SqliteKeyStore
from llmrelay.stores.sqlite import SqliteKV, connect

ROUNDS = 200


async def _race(
    path: Path, read: Callable[[], Awaitable[object]], write: Callable[[int], Awaitable[object]]
) -> None:
    """Reads of existing rows and writes through one store, while another connection writes."""
    other = await connect(path)
    try:
        await other.execute("CREATE TABLE elsewhere (n INTEGER)")

        async def reads() -> None:
            for _ in range(ROUNDS):
                await read()

        async def writes() -> None:
            for n in range(ROUNDS):
                await write(n)

        async def foreign() -> None:
            for n in range(ROUNDS):
                await other.execute("INSERT INTO elsewhere VALUES (?)", (n,))

        await asyncio.gather(reads(), reads(), writes(), foreign())
    finally:
        await other.close()


def _key(n: int) -> VirtualKey:
    return VirtualKey(id=f"key_{n}_{uuid.uuid4().hex}", hash=uuid.uuid4().hex, display="sk-…", created_at=0.0)


async def test_key_store_writes_while_it_lists_and_looks_up(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "state.db")
    await store.open()
    try:
        first = _key(-1)
        await store.insert(first)

        async def read() -> None:
            assert await store.by_hash(first.hash) == first
            assert len(await store.list()) >= 1

        await _race(tmp_path / "state.db", read, lambda n: store.insert(_key(n)))
        assert len(await store.list()) == ROUNDS + 1
    finally:
        await store.aclose()


async def test_audit_log_records_while_it_is_queried(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "state.db")
    await log.open()
    try:
        for n in range(3):
            await log.record(at=0.0, actor="master", action="key.create", target=str(n), details={})

        async def write(n: int) -> object:
            return await log.record(at=1.0, actor="master", action="key.rotate", target=str(n), details={})

        await _race(tmp_path / "state.db", lambda: log.query(limit=10), write)
        assert len(await log.query(limit=1000, action="key.rotate")) == ROUNDS
    finally:
        await log.aclose()


async def test_kv_sets_while_it_reads(tmp_path: Path) -> None:
    kv = SqliteKV(tmp_path / "state.db", SystemClock(), max_entries=10_000, purge_every=0.0)
    await kv.open()
    try:
        await kv.set("seen", b"x", ttl=60)

        async def read() -> None:
            assert await kv.get("seen") == b"x"

        await _race(tmp_path / "state.db", read, lambda n: kv.set(f"k{n}", b"v", ttl=60))
        assert await kv.get(f"k{ROUNDS - 1}") == b"v"
    finally:
        await kv.aclose()
