"""A plain ``sqlite3`` connection on a thread of its own, for stores whose operations are whole
transactions (a ledger batch, a budget reservation).

Each operation is one function run on that thread: one hop between the event loop and the thread
per operation, where a statement-by-statement async driver (``aiosqlite``) takes one per statement
(``BEGIN``, each statement, ``COMMIT``). The single thread runs operations one at a time, so
transactions of one process never interleave; ``BEGIN IMMEDIATE`` (:func:`immediate`) serialises
them with the other processes sharing the file. Opened as every SQLite store is
(:mod:`llmrelay.stores.sqlite_file`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from llmrelay.stores.sqlite_file import check_directory, open_file

T = TypeVar("T")


class SqliteThread:
    def __init__(self, path: Path, *, schema: Sequence[str] = (), name: str = "llmrelay-sqlite") -> None:
        self._path = path
        self._schema = tuple(schema)
        self._name = name
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        """Connect and create the tables (``schema``: idempotent ``CREATE ... IF NOT EXISTS``)."""
        if self._db is not None:
            return
        check_directory(self._path)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        self._db = await self._submit(self._connect)

    async def aclose(self) -> None:
        if self._db is not None and self._thread is not None:
            db, self._db = self._db, None
            await self._submit(db.close)
            self._thread.shutdown(wait=False)
            self._thread = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the store's thread."""
        db = self._db
        if db is None:
            raise RuntimeError(f"SQLite store {self._path} used before open()")
        return await self._submit(lambda: fn(db))

    async def _submit(self, fn: Callable[[], T]) -> T:
        assert self._thread is not None
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _connect(self) -> sqlite3.Connection:
        db = open_file(self._path)
        try:
            for statement in self._schema:
                db.execute(statement)
        except BaseException:
            db.close()
            raise
        return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A transaction that takes the write lock first: no other process writes (or decides) meanwhile."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
