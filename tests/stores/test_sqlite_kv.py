"""The SQLite KV keeps claims cheap at any table size: indexed, bounded, paced purges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.errors import ConfigError
from llmrelay.stores.sqlite import SqliteKV


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def kv(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteKV]:
    store = SqliteKV(tmp_path / "kv.db", clock, purge_batch=100, purge_every=10.0)
    await store.open()
    yield store
    await store.aclose()


async def rows(kv: SqliteKV) -> int:
    async with kv.db.execute(f"SELECT count(*) FROM {kv._table}") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else -1


async def fill(kv: SqliteKV, n: int, *, ttl: float, prefix: str = "old") -> None:
    """Rows written straight to the table (by another replica, say): no purge runs here."""
    expires = kv._clock.wall() + ttl
    await kv.db.executemany(
        f"INSERT INTO {kv._table} (key, value, expires) VALUES (?, ?, ?)",
        [(f"{prefix}{i}", b"v", expires) for i in range(n)],
    )


async def test_expiry_is_indexed_and_the_purge_uses_the_index(kv: SqliteKV) -> None:
    async with kv.db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (kv._table,)
    ) as cursor:
        indexes = [row[0] for row in await cursor.fetchall() if row[0]]
    assert any("(expires)" in sql for sql in indexes)
    t = kv._table
    async with kv.db.execute(
        f"EXPLAIN QUERY PLAN SELECT rowid FROM {t} WHERE expires <= 0 ORDER BY expires LIMIT 10"
    ) as cursor:
        plan = " ".join(str(row[-1]) for row in await cursor.fetchall())
    assert "USING" in plan and "INDEX" in plan and "SCAN" not in plan.replace("USING", "")


async def test_a_claim_purges_one_bounded_batch_not_the_whole_table(kv: SqliteKV, clock: FakeClock) -> None:
    await fill(kv, 350, ttl=5)
    clock.advance(5)
    assert await kv.set_if_absent("c0", b"p", ttl=60)
    assert await rows(kv) == 351 - 100  # one batch of 100 expired rows, not all 350
    assert await kv.set_if_absent("c1", b"p", ttl=60)  # a full batch means a backlog: purge on
    assert await kv.set_if_absent("c2", b"p", ttl=60)
    assert await kv.set_if_absent("c3", b"p", ttl=60)
    assert await rows(kv) == 4  # 50 in the last batch: backlog gone
    await fill(kv, 10, ttl=1, prefix="new")
    clock.advance(1)
    assert await kv.set_if_absent("c4", b"p", ttl=60)
    assert await rows(kv) == 15  # not due yet: at most one purge per purge_every
    clock.advance(10)
    assert await kv.set_if_absent("c5", b"p", ttl=60)
    assert await rows(kv) == 6


async def test_an_expired_row_not_yet_purged_can_be_claimed_again(kv: SqliteKV, clock: FakeClock) -> None:
    assert await kv.set_if_absent("k", b"first", ttl=5)  # the first write purges (nothing)
    clock.advance(5)
    assert await kv.get("k") is None
    assert await kv.set_if_absent("k", b"second", ttl=5)  # purge not due: the claim takes the row over
    assert not await kv.set_if_absent("k", b"third", ttl=5)
    assert await kv.get("k") == b"second"


async def test_the_entry_cap_evicts_soonest_to_expire_but_never_a_claim(
    tmp_path: Path, clock: FakeClock
) -> None:
    kv = SqliteKV(tmp_path / "cap.db", clock, max_entries=5, purge_batch=100, purge_every=10.0)
    await kv.open()
    try:
        assert await kv.set_if_absent("claim", b"pending", ttl=50)  # expires first, but in flight
        for i in range(8):
            await kv.set(f"k{i}", b"v", ttl=100 + i)  # within purge_every: no check yet
        clock.advance(10)
        await kv.set("last", b"v", ttl=500)  # due: 9 rows, 4 over the cap go, then this one lands
        async with kv.db.execute(f"SELECT key FROM {kv._table} ORDER BY key") as cursor:
            left = [row[0] for row in await cursor.fetchall()]
        assert left == ["claim", "k4", "k5", "k6", "k7", "last"]
    finally:
        await kv.aclose()


async def test_a_missing_directory_is_an_error_naming_it_and_is_not_created(
    tmp_path: Path, clock: FakeClock
) -> None:
    missing = tmp_path / "nope" / "deeper"
    kv = SqliteKV(missing / "kv.db", clock)
    with pytest.raises(ConfigError) as info:
        await kv.open()
    assert str(missing) in info.value.message
    assert not (tmp_path / "nope").exists()
