"""Every store of the server opens the one SQLite state file at the same moment at start-up: none
of them may fail with `database is locked` (it failed a server start about one time in ten)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.stores.sqlite import SqliteKV
from llmrelay.stores.sqlite_thread import SqliteThread


@pytest.mark.parametrize("round_", range(5))
async def test_many_stores_open_one_new_file_at_once(tmp_path: Path, round_: int) -> None:
    path = tmp_path / f"state-{round_}.db"
    kvs = [SqliteKV(path, FakeClock(), namespace=f"ns{i}") for i in range(8)]
    threads = [SqliteThread(path, schema=[f"CREATE TABLE IF NOT EXISTS t{i} (x)"]) for i in range(8)]
    stores: list[SqliteKV | SqliteThread] = [*kvs, *threads]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        await kvs[0].set("k", b"v", ttl=60)
        assert await kvs[0].get("k") == b"v"
        assert await threads[0].run(lambda db: db.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    finally:
        await asyncio.gather(*(store.aclose() for store in stores))


async def test_a_store_that_cannot_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    """A connection thread left running keeps the process from exiting after a failed start."""
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not a SQLite file" * 100)
    before = set(threading.enumerate())  # other tests' stores are theirs to close
    with pytest.raises(sqlite3.DatabaseError):
        await SqliteKV(path, FakeClock(), namespace="idem").open()
    new = set(threading.enumerate()) - before
    alive = [t.name for t in new if "_connection_worker_thread" in t.name and t.is_alive()]
    assert alive == []  # aiosqlite's threads are not daemons: one would hold the process open
