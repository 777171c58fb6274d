"""Per-operation cost of the state stores and the breaker at scale (a script; not a timed test).

    .venv/bin/python bench/state.py     # ~10 s; timings vary with machine load: compare runs

* SQLite KV: ``set_if_absent`` of new keys with 200,000 live rows in the table;
* memory KV: ``set`` of new keys into a full store of 100,000 entries (each one evicts);
* breaker: ``failure()`` + ``success()`` with 2,000 calls/s recorded in a 30 s window.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from llmrelay.clock import FakeClock, SystemClock
from llmrelay.policies.breaker_state import BreakerState, CircuitBreakerConfig
from llmrelay.stores.memory import MemoryKV
from llmrelay.stores.sqlite import SqliteKV

ROWS = 200_000
ENTRIES = 100_000
OPS = 2_000
CLAIMS = 10_000


async def sqlite_claim(tmp: Path, **options: int) -> float:
    """Real time, so the paced purge (and the cap check, with ``max_entries``) runs as in service."""
    kv = SqliteKV(tmp / "bench.db", SystemClock(), **options)  # type: ignore[arg-type]
    await kv.open()
    db = kv.db
    table = getattr(kv, "_table", "kv")
    wall = time.time()
    rows = [(f"live:{i}", b"x" * 200, wall + 86_400.0) for i in range(ROWS)]
    await db.executemany(f"INSERT INTO {table} (key, value, expires) VALUES (?, ?, ?)", rows)
    start = time.perf_counter()
    for i in range(CLAIMS):
        assert await kv.set_if_absent(f"claim:{i}", b"pending", ttl=600)
    elapsed = time.perf_counter() - start
    await kv.aclose()
    return elapsed / CLAIMS


async def memory_set() -> float:
    kv = MemoryKV(FakeClock(), max_entries=ENTRIES)
    for i in range(ENTRIES):
        await kv.set(f"k:{i}", b"x" * 200, ttl=86_400.0)
    start = time.perf_counter()
    for i in range(OPS):
        await kv.set(f"new:{i}", b"x" * 200, ttl=86_400.0)
    return (time.perf_counter() - start) / OPS


def breaker_record() -> float:
    clock = FakeClock()
    state = BreakerState(CircuitBreakerConfig(), clock)
    for _ in range(60_000):  # 30 s at 2,000 calls/s
        clock.advance(0.0005)
        state.success()
    start = time.perf_counter()
    for _ in range(OPS):
        clock.advance(0.0005)
        state.failure()
        state.success()
    return (time.perf_counter() - start) / (2 * OPS)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"sqlite set_if_absent at {ROWS:,} rows: {await sqlite_claim(Path(tmp)) * 1e3:.3f} ms")
    if "max_entries" in (SqliteKV.__init__.__kwdefaults__ or {}):  # not in the old store
        with tempfile.TemporaryDirectory() as tmp:
            per_claim = await sqlite_claim(Path(tmp), max_entries=1_000_000)
            print(f"  ... with max_entries=1,000,000 (count(*) once per second): {per_claim * 1e3:.3f} ms")
    print(f"memory set at {ENTRIES:,} entries (full): {await memory_set() * 1e6:.1f} µs")
    print(f"breaker record at 2,000 calls/s, 30 s window: {breaker_record() * 1e6:.1f} µs")


if __name__ == "__main__":
    asyncio.run(main())
