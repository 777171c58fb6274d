"""Where the deployment's shared records live (``open_state_kv``): with ``state.redis`` every
replica must see the same idempotency records, stored responses, dashboard sessions and alert
leases, whatever the SQL state is; without it, the SQLite file, or this process's memory."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from llmrelay.clock import SystemClock
from llmrelay.config import RedisConfig, Secret, StateConfig
from llmrelay.stores import open_state_kv
from llmrelay.stores.memory import MemoryKV
from llmrelay.stores.redis import RedisKV
from llmrelay.stores.sqlite import SqliteKV
from tests.pg import SERVER
from tests.services import require

REDIS = RedisConfig(url=Secret("redis://127.0.0.1:6379/0"))


async def shared(state: StateConfig) -> bool:
    """Whether a record written through one store (one replica) is read through another."""
    one = open_state_kv(state, SystemClock(), namespace="idem")
    two = open_state_kv(state, SystemClock(), namespace="idem")
    await one.open()
    await two.open()
    key = f"test:{uuid.uuid4().hex}"
    try:
        await one.set(key, b"answer", ttl=60)
        return await two.get(key) == b"answer"
    finally:
        await one.delete(key)
        await one.aclose()
        await two.aclose()


async def test_with_redis_every_replica_shares_the_records(tmp_path: Path) -> None:
    require(6379, "Redis")
    for url in (SERVER, f"sqlite:///{tmp_path / 'state.db'}", None):
        state = StateConfig(url=url, redis=REDIS)
        assert isinstance(open_state_kv(state, SystemClock(), namespace="idem"), RedisKV), url
        assert await shared(state), url


async def test_without_redis_the_sqlite_file_or_this_process(tmp_path: Path) -> None:
    sqlite = StateConfig(url=f"sqlite:///{tmp_path / 'state.db'}")
    assert isinstance(open_state_kv(sqlite, SystemClock(), namespace="idem"), SqliteKV)
    assert await shared(sqlite)  # the workers of one host share the file
    for state in (StateConfig(url=SERVER), StateConfig()):
        assert isinstance(open_state_kv(state, SystemClock(), namespace="idem"), MemoryKV)
        assert not await shared(state)  # PostgreSQL holds no KV records: each process its own


def test_the_redis_kv_needs_no_client_package() -> None:
    """``pip install 'llmrelay[server]'`` has no Redis client package: the KV speaks RESP itself."""
    require(6379, "Redis")
    script = """
import asyncio, sys, uuid
sys.modules["redis"] = None  # as if not installed: importing it raises
from llmrelay.clock import SystemClock
from llmrelay.stores import open_kv

async def main():
    kv = open_kv("redis://127.0.0.1:6379/0", SystemClock(), namespace="idem", timeout=1.0)
    await kv.open()
    key = "test:" + uuid.uuid4().hex
    assert await kv.set_if_absent(key, b"x", ttl=30)
    assert await kv.get(key) == b"x"
    await kv.delete(key)
    await kv.aclose()
    print("ok")

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
