"""Ledger write throughput: rows per second through the batched writer into a real store.

Records ``--rows`` request rows as the server does (``LedgerWriter.record``, no I/O on the caller's
side), then waits until the flusher has written them all; the rate counts from the first record to
the last row committed. Against PostgreSQL it uses a schema of its own, dropped afterwards::

    .venv/bin/python bench/ledger_write.py                                   # local PostgreSQL
    .venv/bin/python bench/ledger_write.py --url sqlite:////tmp/ledger.db    # embedded SQLite

Also prints the caller's cost of ``record`` (the part on the request path) in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from llmrelay.clock import SystemClock
from llmrelay.ledger import LedgerEntry, LedgerWriter, open_ledger

SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def entry(i: int, now: float) -> LedgerEntry:
    return LedgerEntry(
        request_id=os.urandom(16).hex(),
        at=now,
        key_id=f"key_{i % 50}",
        user=f"user{i % 200}",
        team=("search", "ads", "support")[i % 3],
        tags={"feature": "ask", "customer": f"c{i % 17}"},
        alias="fast",
        target="openai/gpt-4o-mini",
        model="gpt-4o-mini-2024-07-18",
        input_tokens=120 + i % 80,
        cached_input_tokens=i % 40,
        output_tokens=60 + i % 30,
        cost=0.000123,
        status=200,
    )


async def run(url: str, rows: int, batch: int) -> None:
    writer = LedgerWriter(open_ledger(url), SystemClock(), batch=batch, interval=0.05, capacity=rows + 1)
    await writer.open()
    now = time.time()
    entries = [entry(i, now) for i in range(rows)]
    started = time.perf_counter()
    for e in entries:
        writer.record(e)
    recorded = time.perf_counter() - started
    assert await writer.flush(timeout=600)
    elapsed = time.perf_counter() - started
    await writer.aclose()
    print(
        f"{url.partition('?')[0]}: {rows:,} rows in {elapsed:.2f} s"
        f" = {rows / elapsed:,.0f} rows/s (batch {batch})"
    )
    print(f"record() on the request path: {recorded / rows * 1e6:.2f} us per row")


async def drop(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help=f"state URL (default: a fresh schema on {SERVER})")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    if args.url is not None:
        asyncio.run(run(args.url, args.rows, args.batch))
        return
    schema = f"bench_ledger_{os.urandom(4).hex()}"
    try:
        asyncio.run(run(f"{SERVER}?schema={schema}", args.rows, args.batch))
    finally:
        asyncio.run(drop(schema))


if __name__ == "__main__":
    main()
