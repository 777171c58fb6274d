"""One contract for every KV backend: memory, SQLite and a real Redis server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from tests.services import require


class Backend:
    def __init__(self, kv: KV, clock: FakeClock | None) -> None:
        self.kv = kv
        self.clock = clock  # None: the backend keeps real time (Redis)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    clock = FakeClock()
    if request.param == "redis":
        require(6379, "Redis")
        kv = open_kv("redis://127.0.0.1:6379/0", clock)
        result = Backend(kv, None)
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'kv.db'}"
        result = Backend(open_kv(url, clock), clock)
    await result.kv.open()
    try:
        yield result
    finally:
        await result.kv.aclose()


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
        ttl_ms = await backend.kv._client.pttl("llmrelay:" + k)  # type: ignore[attr-defined]
        assert 25_000 < ttl_ms <= 30_000
        await backend.kv.delete(k)
        return
    backend.clock.advance(31)
    assert await backend.kv.get(k) is None
    assert await backend.kv.set_if_absent(k, b"again", ttl=30)


async def test_ping(backend: Backend) -> None:
    assert await backend.kv.ping() is True
