"""One contract for every ledger backend (memory, SQLite, real PostgreSQL): rows written in a batch
come back in reports grouped by each dimension, within a time window, with exact totals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.errors import InvalidRequest
from llmrelay.ledger import LedgerEntry, LedgerStore, UsageQuery, open_ledger
from llmrelay.ledger.store import MemoryLedger
from tests.pg import pg_schema

DAY = 86_400.0
T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerStore]:
    if request.param == "postgres":
        async with pg_schema("ledger") as url:
            store = open_ledger(url)
            await store.open()
            try:
                yield store
            finally:
                await store.aclose()
        return
    store = open_ledger("memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'l.db'}")
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


def entry(n: int, **fields: object) -> LedgerEntry:
    base: dict[str, object] = {
        "request_id": f"r{n}",
        "at": T0 + n,
        "key_id": "key_a",
        "user": "ann",
        "team": "search",
        "tags": {"feature": "ask"},
        "alias": "fast",
        "target": "openai/gpt-4o-mini",
        "model": "gpt-4o-mini-2024-07-18",
        "input_tokens": 10,
        "cached_input_tokens": 2,
        "cache_write_input_tokens": 1,
        "output_tokens": 5,
        "cost": 0.25,
        "status": 200,
    }
    return LedgerEntry(**{**base, **fields})  # type: ignore[arg-type]


ROWS = [
    entry(1),
    entry(2, key_id="key_b", user="bob", tags={"feature": "ask", "customer": "acme"}, cost=0.5),
    entry(3, team="ads", tags={"customer": "acme"}, at=T0 + DAY + 5, cost=None),
    entry(
        4,
        status=502,
        input_tokens=0,
        cached_input_tokens=0,
        cache_write_input_tokens=0,
        output_tokens=0,
        cost=0.0,
    ),
]


async def test_totals(ledger: LedgerStore) -> None:
    await ledger.write(ROWS)
    [total] = await ledger.usage(UsageQuery())
    assert total.group is None
    assert (total.requests, total.errors, total.unpriced) == (4, 1, 1)
    assert (total.input_tokens, total.cached_input_tokens, total.cache_write_input_tokens) == (30, 6, 3)
    assert total.output_tokens == 15
    assert total.cost_usd == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("key", {"key_a": (3, 0.25), "key_b": (1, 0.5)}),
        ("user", {"ann": (3, 0.25), "bob": (1, 0.5)}),
        ("team", {"search": (3, 0.75), "ads": (1, 0.0)}),
        ("model", {"gpt-4o-mini-2024-07-18": (4, 0.75)}),
        ("alias", {"fast": (4, 0.75)}),
        ("day", {"2025-12-01": (3, 0.75), "2025-12-02": (1, 0.0)}),
        ("tag:customer", {"acme": (2, 0.5), None: (2, 0.25)}),
        ("tag:feature", {"ask": (3, 0.75), None: (1, 0.0)}),
    ],
)
async def test_group_by(
    ledger: LedgerStore, group_by: str, expected: dict[str | None, tuple[int, float]]
) -> None:
    await ledger.write(ROWS)
    rows = await ledger.usage(UsageQuery.parse(group_by))
    got = {row.group: (row.requests, round(row.cost_usd, 9)) for row in rows}
    assert got == expected
    assert rows[0].cost_usd == max(row.cost_usd for row in rows)  # most expensive first


async def test_window_is_half_open(ledger: LedgerStore) -> None:
    await ledger.write(ROWS)
    [first_day] = await ledger.usage(UsageQuery(since=T0 + 1, until=T0 + DAY))
    assert first_day.requests == 3
    [from_second] = await ledger.usage(UsageQuery(since=T0 + 2))
    assert from_second.requests == 3
    assert await ledger.usage(UsageQuery(group_by="key", since=T0 + 10 * DAY)) == []


async def test_a_tag_name_is_bound_never_spliced(ledger: LedgerStore) -> None:
    await ledger.write([entry(1, tags={"a.b": "x"})])
    [row] = await ledger.usage(UsageQuery.parse("tag:a.b"))
    assert row.group == "x"
    with pytest.raises(InvalidRequest):
        UsageQuery.parse("tag:x') OR 1=1 --")


def test_unknown_group_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="group_by must be one of"):
        UsageQuery.parse("colour")


async def test_large_batch(ledger: LedgerStore) -> None:
    await ledger.write([entry(i, cost=0.001) for i in range(5_000)])
    [total] = await ledger.usage(UsageQuery())
    assert total.requests == 5_000
    assert total.cost_usd == pytest.approx(5.0)


async def test_the_memory_ledger_keeps_the_latest_rows() -> None:
    store = MemoryLedger(max_rows=3)
    await store.write([entry(i) for i in range(5)])
    assert [e.request_id for e in store.entries] == ["r2", "r3", "r4"]
    [total] = await store.usage(UsageQuery())
    assert total.requests == 3
