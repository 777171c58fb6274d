"""Opening a SQLite state file the same way from every store: busy timeout first, then WAL.

Several stores share one file (keys, idempotency, stored responses, ledger, budgets, audit) and
open their connections at the same moment at start-up. Switching a file to WAL takes an exclusive
lock, and SQLite answers ``database is locked`` at once, without waiting out the busy timeout, to
a connection that asks while another is doing the same; so the switch is retried here for up to
``wait`` seconds. WAL is a property of the file: once one connection has set it, the others only
read it back.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from llmrelay.errors import ConfigError

BUSY_TIMEOUT_MS = 5000


def check_directory(path: Path) -> None:
    """A typo in a URL must not create directories: the server's default data dir is created
    where that default is chosen (:func:`llmrelay.config_environment.with_server_defaults`), not here."""
    if not path.parent.is_dir():
        raise ConfigError(f"cannot open SQLite state {path}: directory {path.parent} does not exist")


def prepare(db: sqlite3.Connection, *, wait: float = 5.0) -> None:
    """Busy timeout, WAL (retried while another connection holds the lock), ``synchronous=NORMAL``."""
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    give_up = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() + delay > give_up:
                raise
            time.sleep(delay)  # on a store's own thread, never the event loop's
            delay = min(delay * 2, 0.1)
    db.execute("PRAGMA synchronous=NORMAL")


def open_file(path: Path) -> sqlite3.Connection:
    """A prepared connection usable from any one thread at a time (``check_same_thread=False``)."""
    check_directory(path)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        prepare(db)
    except BaseException:
        db.close()
        raise
    return db
