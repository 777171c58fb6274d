"""One contract for every KV backend: memory, SQLite and a real Redis server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from tests.services import require

REDIS_URL = "redis://127.0.0.1:6379/0"


class Backend:
    def __init__(self, name: str, url: str, clock: FakeClock) -> None:
        self.name = name
        self.url = url
        self.kv = open_kv(url, clock)
        self.clock: FakeClock | None = None if name == "redis" else clock  # Redis keeps real time
        self._clock = clock
        self._opened: list[KV] = [self.kv]

    async def open(self, namespace: str = "default") -> KV:
        """Another store on the same backend: a second connection (or instance, in memory)."""
        kv = open_kv(self.url, self._clock, namespace=namespace)
        await kv.open()
        self._opened.append(kv)
        return kv

    async def aclose(self) -> None:
        for kv in self._opened:
            await kv.aclose()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "redis":
        require(6379, "Redis")
        url = REDIS_URL
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'kv.db'}"
    result = Backend(request.param, url, FakeClock())
    await result.kv.open()
    try:
        yield result
    finally:
        await result.aclose()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


async def test_set_get_delete(backend: Backend) -> None:
    k = key()
    assert await backend.kv.get(k) is None
    await backend.kv.set(k, b"\x00value\xff")
    assert await backend.kv.get(k) == b"\x00value\xff"
    await backend.kv.set(k, b"new")
    assert await backend.kv.get(k) == b"new"
    await backend.kv.delete(k)
    assert await backend.kv.get(k) is None
    await backend.kv.delete(k)  # deleting a missing key is fine


async def test_set_if_absent_claims_once(backend: Backend) -> None:
    k = key()
    assert await backend.kv.set_if_absent(k, b"first", ttl=60)
    assert not await backend.kv.set_if_absent(k, b"second", ttl=60)
    assert await backend.kv.get(k) == b"first"
    await backend.kv.delete(k)
    assert await backend.kv.set_if_absent(k, b"third")
    await backend.kv.delete(k)


async def test_ttl_expires(backend: Backend) -> None:
    k = key()
    await backend.kv.set(k, b"v", ttl=30)
    assert await backend.kv.get(k) == b"v"
    if backend.clock is None:  # Redis: check the TTL Redis holds instead of waiting for it
        import redis.asyncio as redis  # an independent client reads what the server holds

        client = redis.from_url(REDIS_URL)
        try:
            ttl_ms = await client.pttl("llmrelay:default:" + k)
        finally:
            await client.aclose()
        assert 25_000 < ttl_ms <= 30_000
        await backend.kv.delete(k)
        return
    backend.clock.advance(31)
    assert await backend.kv.get(k) is None
    assert await backend.kv.set_if_absent(k, b"again", ttl=30)


async def test_ping(backend: Backend) -> None:
    assert await backend.kv.ping() is True


async def test_set_if_absent_has_exactly_one_winner_among_racing_callers(backend: Backend) -> None:
    """50 callers claim one key at once, over two connections where the backend has them (two
    replicas); a get-then-set claim lets several of them win on SQLite and Redis."""
    k = key()
    stores = [backend.kv] if backend.name == "memory" else [backend.kv, await backend.open()]

    async def claim(i: int) -> bool:
        return await stores[i % len(stores)].set_if_absent(k, f"caller {i}".encode(), ttl=60)

    won = [i for i, ok in enumerate(await asyncio.gather(*(claim(i) for i in range(50)))) if ok]
    assert len(won) == 1
    assert await backend.kv.get(k) == f"caller {won[0]}".encode()
    await backend.kv.delete(k)


async def test_namespaces_are_independent(backend: Backend) -> None:
    k = key()
    idem = await backend.open("idem")
    await backend.kv.set(k, b"cache", ttl=60)
    assert await idem.get(k) is None
    assert await idem.set_if_absent(k, b"claim", ttl=60)
    assert await backend.kv.get(k) == b"cache"
    await backend.kv.delete(k)
    assert await idem.get(k) == b"claim"
    await idem.delete(k)
