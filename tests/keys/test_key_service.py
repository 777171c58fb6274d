from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from llmrelay.errors import AuthenticationError, Conflict, InvalidRequest, NotFound
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


async def test_revoking_twice_keeps_the_first_revocation_time() -> None:
    clock = FakeClock()
    service = KeyService(MemoryKeyStore(), clock)
    _, key = await service.create()
    first = await service.revoke(key.id)
    clock.advance(10)
    assert (await service.revoke(key.id)).revoked_at == first.revoked_at


async def test_the_auth_cache_evicts_the_least_recently_used_key_only() -> None:
    store = CountingStore()
    service = KeyService(store, FakeClock(), cache_size=2)
    a, b, c = [(await service.create())[0] for _ in range(3)]
    for secret in (a, b, a, c):  # c evicts b, the least recently used; a stays
        await service.authenticate(secret)
    assert store.lookups == 3
    await service.authenticate(a)
    assert store.lookups == 3
    await service.authenticate(b)
    assert store.lookups == 4


async def test_model_names_are_trimmed_and_blanks_dropped() -> None:
    service = KeyService(MemoryKeyStore(), FakeClock())
    _, key = await service.create(models=[" mock", "mock-embed ", "", "  ", "mock"])
    assert key.models == ("mock", "mock-embed")
    stored = await service.get(key.id)
    assert stored is not None and stored.models == ("mock", "mock-embed")


async def test_revoking_here_a_key_revoked_elsewhere_takes_effect_here_at_once() -> None:
    clock = FakeClock()
    store = MemoryKeyStore()
    here, elsewhere = KeyService(store, clock), KeyService(store, clock)  # e.g. the server and the CLI
    secret, key = await here.create()
    await here.authenticate(secret)
    await elsewhere.revoke(key.id)
    await here.authenticate(secret)  # cached here: the documented cache_ttl window
    await here.revoke(key.id)  # nothing to write, but this process must stop trusting its cache
    with pytest.raises(AuthenticationError, match="revoked"):
        await here.authenticate(secret)


async def test_a_key_cannot_be_created_already_expired() -> None:
    clock = FakeClock()
    service = KeyService(MemoryKeyStore(), clock)
    with pytest.raises(InvalidRequest) as refused:
        await service.create(expires_at=clock.wall())
    assert refused.value.param == "expires_at"
    assert await service.list() == []


class LosingStore(MemoryKeyStore):
    """Every compare-and-set loses, as if another writer always got there first."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def compare_and_set(self, current: VirtualKey, new: VirtualKey) -> VirtualKey | None:
        self.attempts += 1
        return None


async def test_an_update_that_keeps_losing_the_race_gives_up_with_a_conflict() -> None:
    store = LosingStore()
    service = KeyService(store, FakeClock())
    _, key = await service.create()
    with pytest.raises(Conflict) as busy:
        await service.revoke(key.id)
    assert busy.value.code == "key_busy" and 1 < store.attempts < 100
    assert (await service.get(key.id)) == key
