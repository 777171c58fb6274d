"""SQLite specifics the contract suite cannot see: files made by earlier versions keep working."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from llmrelay.keys.lifecycle import revoked
from llmrelay.keys.model import display_prefix, hash_secret, new_secret
from llmrelay.keys.store import SqliteKeyStore


async def test_a_table_from_before_versions_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    secret = new_secret()
    old_record = {  # as 0.x wrote it: no version, in the record or as a column
        "id": "key_old",
        "hash": hash_secret(secret),
        "display": display_prefix(secret),
        "created_at": 1_700_000_000.0,
    }
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE virtual_keys ("
            " id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, previous_hash TEXT, record BLOB NOT NULL)"
        )
        db.execute(
            "INSERT INTO virtual_keys VALUES (?, ?, NULL, ?)",
            ("key_old", old_record["hash"], msgspec.json.encode(old_record)),
        )
    db.close()
    for _ in range(2):  # opening again finds the column there and leaves it
        store = SqliteKeyStore(path)
        await store.open()
        key = await store.get("key_old")
        assert key is not None and key.version == 0 and await store.by_hash(key.hash) == key
        await store.aclose()
    store = SqliteKeyStore(path)
    await store.open()
    try:
        stored = await store.compare_and_set(key, revoked(key, now=1_700_000_001.0))
        assert stored is not None and (await store.get("key_old")) == stored
    finally:
        await store.aclose()
