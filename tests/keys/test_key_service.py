from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from llmrelay.errors import AuthenticationError, NotFound
from llmrelay.keys import KeyService, VirtualKey
from llmrelay.keys.store import MemoryKeyStore, SqliteKeyStore


class CountingStore(MemoryKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def by_hash(self, digest: str) -> VirtualKey | None:
        self.lookups += 1
        return await super().by_hash(digest)


@pytest.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[tuple[KeyService, FakeClock, Path]]:
    clock = FakeClock()
    path = tmp_path / "keys.db"
    service = KeyService(SqliteKeyStore(path), clock)
    await service.open()
    yield service, clock, path
    await service.aclose()


async def test_lifecycle_on_sqlite(sqlite_service: tuple[KeyService, FakeClock, Path]) -> None:
    service, clock, path = sqlite_service
    secret, key = await service.create(name="bot", models=["fast"], tier="pro", metadata={"team": "x"})
    assert secret.startswith("sk-relay-") and len(secret) > 40
    assert (await service.authenticate(secret)).id == key.id
    assert key.allows("fast") and not key.allows("smart")
    assert [k.id for k in await service.list()] == [key.id]
    assert secret.encode() not in path.read_bytes()  # only the hash is at rest

    new_secret, rotated = await service.rotate(key.id, grace_seconds=60)
    assert (await service.authenticate(new_secret)).id == key.id
    assert (await service.authenticate(secret)).id == key.id  # within grace
    clock.advance(61)
    with pytest.raises(AuthenticationError, match="rotated"):
        await service.authenticate(secret)
    assert (await service.authenticate(new_secret)).hash == rotated.hash

    await service.revoke(key.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await service.authenticate(new_secret)


async def test_unknown_expired_and_missing_keys() -> None:
    clock = FakeClock()
    service = KeyService(MemoryKeyStore(), clock)
    with pytest.raises(AuthenticationError) as unknown:
        await service.authenticate("sk-relay-made-up")
    assert "sk-relay-made-up" not in unknown.value.message
    secret, _ = await service.create(expires_at=clock.wall() + 10)
    await service.authenticate(secret)
    clock.advance(11)
    with pytest.raises(AuthenticationError, match="expired"):
        await service.authenticate(secret)
    with pytest.raises(NotFound):
        await service.revoke("key_nope")


async def test_hot_path_is_served_from_the_cache() -> None:
    clock = FakeClock()
    store = CountingStore()
    service = KeyService(store, clock, cache_ttl=5)
    secret, key = await service.create()
    for _ in range(100):
        await service.authenticate(secret)
    assert store.lookups == 1
    clock.advance(6)
    await service.authenticate(secret)
    assert store.lookups == 2
    await service.revoke(key.id)  # revocation in this process is immediate
    with pytest.raises(AuthenticationError):
        await service.authenticate(secret)


async def test_static_keys_from_config() -> None:
    config = load_config(
        {
            "keys": [{"key": "sk-static-123", "name": "ci", "models": ["a"]}],
            "models": [{"name": "a", "targets": [{"provider": "mock"}]}],
        }
    )
    store = CountingStore()
    service = KeyService(store, FakeClock(), static=config.keys)
    key = await service.authenticate("sk-static-123")
    assert key.id == "static_ci" and key.models == ("a",)
    assert store.lookups == 0
    assert await service.list() == []
