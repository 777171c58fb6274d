"""asyncpg vs psycopg 3 on the local PostgreSQL: what chose the driver of ``llmrelay.stores.postgres``.

Two figures per driver, on a table shaped like the ledger's, in a schema of its own (dropped at the
end): batched inserts (rows/s, 500-row batches in one round trip each) and one-row latency (an
``INSERT ... RETURNING`` and a primary-key ``SELECT``, p50/p99 in ms, sequential)::

    .venv/bin/python bench/pg_drivers.py [--dsn postgresql://postgres@127.0.0.1:5432/test]

Both drivers must be installed (``pip install asyncpg psycopg[binary]``); the project depends on the
winner only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROWS = 100_000
BATCH = 500
SINGLE = 2_000

CREATE = (
    "CREATE TABLE {s}.rows (id bigserial PRIMARY KEY, request_id text, at double precision, key_id text,"
    " model text, input_tokens bigint, output_tokens bigint, cost double precision, tags jsonb)"
)
COLUMNS = ("request_id", "at", "key_id", "model", "input_tokens", "output_tokens", "cost", "tags")


def row(i: int) -> tuple[Any, ...]:
    return (f"req-{i}", time.time(), "key_abc", "gpt-4o-mini", 120 + i % 50, 40, 0.00042, '{"f": "x"}')


async def timed(label: str, runs: int, step: Callable[[int], Awaitable[None]]) -> list[float]:
    latencies = []
    for i in range(runs):
        started = time.perf_counter()
        await step(i)
        latencies.append((time.perf_counter() - started) * 1000)
    q = statistics.quantiles(latencies, n=100)
    print(f"  {label:<24} p50 {q[49]:.3f} ms  p99 {q[98]:.3f} ms")
    return latencies


async def bench_asyncpg(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(CREATE.format(s=schema))
        started = time.perf_counter()
        for start in range(0, ROWS, BATCH):
            await conn.copy_records_to_table(
                "rows",
                schema_name=schema,
                columns=COLUMNS,
                records=[row(i) for i in range(start, start + BATCH)],
            )
        print(f"asyncpg  copy batches    {ROWS / (time.perf_counter() - started):,.0f} rows/s")
        started = time.perf_counter()
        sql = f"INSERT INTO {schema}.rows ({', '.join(COLUMNS)}) SELECT * FROM unnest($1::text[],"
        sql += " $2::float8[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::float8[], $8::jsonb[])"
        for start in range(0, ROWS, BATCH):
            rows = [row(i) for i in range(start, start + BATCH)]
            await conn.execute(sql, *[list(column) for column in zip(*rows, strict=True)])
        print(f"asyncpg  unnest batches  {ROWS / (time.perf_counter() - started):,.0f} rows/s")
        insert = (
            f"INSERT INTO {schema}.rows ({', '.join(COLUMNS)}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id"
        )
        await timed("insert one", SINGLE, lambda i: conn.fetchval(insert, *row(i)))
        await timed(
            "select by key",
            SINGLE,
            lambda i: conn.fetchrow(f"SELECT * FROM {schema}.rows WHERE id=$1", i + 1),
        )
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


async def bench_psycopg(dsn: str, schema: str) -> None:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(CREATE.format(s=schema))
        started = time.perf_counter()
        for start in range(0, ROWS, BATCH):
            copy_sql = f"COPY {schema}.rows ({', '.join(COLUMNS)}) FROM STDIN"
            async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for i in range(start, start + BATCH):
                    await copy.write_row(row(i))
        print(f"psycopg  copy batches    {ROWS / (time.perf_counter() - started):,.0f} rows/s")
        started = time.perf_counter()
        insert = f"INSERT INTO {schema}.rows ({', '.join(COLUMNS)}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
        for start in range(0, ROWS, BATCH):
            async with conn.cursor() as cur:
                await cur.executemany(insert, [row(i) for i in range(start, start + BATCH)])
        print(f"psycopg  executemany     {ROWS / (time.perf_counter() - started):,.0f} rows/s")

        async def one(i: int) -> None:
            async with conn.cursor() as cur:
                await cur.execute(insert + " RETURNING id", row(i), prepare=True)
                await cur.fetchone()

        async def select(i: int) -> None:
            async with conn.cursor() as cur:
                await cur.execute(f"SELECT * FROM {schema}.rows WHERE id=%s", (i + 1,), prepare=True)
                await cur.fetchone()

        await timed("insert one", SINGLE, one)
        await timed("select by key", SINGLE, select)
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    suffix = os.urandom(4).hex()
    asyncio.run(bench_asyncpg(args.dsn, f"bench_asyncpg_{suffix}"))
    asyncio.run(bench_psycopg(args.dsn, f"bench_psycopg_{suffix}"))


if __name__ == "__main__":
    main()
