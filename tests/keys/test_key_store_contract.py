"""One contract for every virtual-key store backend, and the key semantics that rest on it.

Each test runs once per entry of ``BACKENDS``. Each entry is a factory of an async context
manager holding an unopened store (PostgreSQL's: in a schema of its own, dropped afterwards). Tests
never assume an empty store: they make keys with fresh random ids and secrets, and look only at
those, so a shared database works too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import msgspec
import pytest

from llmrelay.clock import FakeClock
from llmrelay.errors import AuthenticationError, Conflict
from llmrelay.keys import KeyService, VirtualKey
from llmrelay.keys.lifecycle import revoked, rotated
from llmrelay.keys.model import display_prefix, hash_secret, new_secret
from llmrelay.keys.postgres_store import PostgresKeyStore
from llmrelay.keys.store import KeyStore, MemoryKeyStore, SqliteKeyStore
from tests.keys.pausing_store import PausingKeyStore
from tests.pg import pg_schema


@asynccontextmanager
async def _postgres(tmp: Path) -> AsyncIterator[KeyStore]:
    async with pg_schema("keys") as url:
        yield PostgresKeyStore(url)


@asynccontextmanager
async def _plain(store: KeyStore) -> AsyncIterator[KeyStore]:
    yield store


BACKENDS: dict[str, Callable[[Path], AbstractAsyncContextManager[KeyStore]]] = {
    "memory": lambda tmp: _plain(MemoryKeyStore()),
    "sqlite": lambda tmp: _plain(SqliteKeyStore(tmp / "keys.db")),
    "postgres": _postgres,
}

NOW = 1_700_000_000.0  # FakeClock's default wall time


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    async with BACKENDS[request.param](tmp_path) as backend:
        await backend.open()
        try:
            yield backend
        finally:
            await backend.aclose()


def record(**changes: object) -> VirtualKey:
    secret = new_secret()
    key = VirtualKey(
        id="key_" + new_secret()[-16:],
        hash=hash_secret(secret),
        display=display_prefix(secret),
        name="contract",
        models=("a", "b"),
        tier="pro",
        metadata={"team": "x", "user": "ü"},
        created_at=NOW,
        expires_at=NOW + 3600.5,
    )
    return msgspec.structs.replace(key, **changes)


# --- the store -------------------------------------------------------------------------------


async def test_insert_then_find_by_id_and_by_hash(store: KeyStore) -> None:
    key = record()
    await store.insert(key)
    assert await store.get(key.id) == key
    assert await store.by_hash(key.hash) == key
    assert await store.get("key_absent") is None
    assert await store.by_hash(hash_secret(new_secret())) is None
    assert await store.ping() is True


async def test_list_is_oldest_first(store: KeyStore) -> None:
    mine = [record() for _ in range(3)]
    for key in mine:
        await store.insert(key)
    listed = [k for k in await store.list() if k.id in {m.id for m in mine}]
    assert listed == mine


async def test_insert_refuses_a_taken_id_and_keeps_the_first(store: KeyStore) -> None:
    key = record()
    await store.insert(key)
    with pytest.raises(Conflict):
        await store.insert(record(id=key.id))
    assert await store.get(key.id) == key


async def test_compare_and_set_writes_at_the_next_version(store: KeyStore) -> None:
    key = record()
    await store.insert(key)
    stored = await store.compare_and_set(key, revoked(key, now=NOW))
    assert stored is not None and stored.version == key.version + 1 and stored.revoked_at == NOW
    assert await store.get(key.id) == stored
    again = await store.compare_and_set(stored, msgspec.structs.replace(stored, name="renamed"))
    assert again is not None and again.version == 2 and (await store.get(key.id)) == again


async def test_compare_and_set_from_a_stale_read_writes_nothing(store: KeyStore) -> None:
    """Two writers read the same version: the first wins, the second learns it lost."""
    key = record()
    await store.insert(key)
    first = await store.compare_and_set(key, revoked(key, now=NOW))
    second = await store.compare_and_set(key, rotated(key, new_secret(), now=NOW, grace_seconds=60))
    assert first is not None and second is None
    assert await store.get(key.id) == first
    assert await store.by_hash(key.hash) == first


async def test_compare_and_set_of_a_missing_key_writes_nothing(store: KeyStore) -> None:
    ghost = record()
    assert await store.compare_and_set(ghost, revoked(ghost, now=NOW)) is None
    assert await store.get(ghost.id) is None
    with pytest.raises(ValueError, match="id"):
        await store.compare_and_set(ghost, record())


async def test_the_previous_hash_finds_the_key_until_the_next_rotation(store: KeyStore) -> None:
    key = record()
    await store.insert(key)
    once = await store.compare_and_set(key, rotated(key, new_secret(), now=NOW, grace_seconds=60))
    assert once is not None and once.previous_hash == key.hash
    assert await store.by_hash(once.hash) == once
    assert await store.by_hash(key.hash) == once  # the rotated-out secret still finds its key
    twice = await store.compare_and_set(once, rotated(once, new_secret(), now=NOW, grace_seconds=60))
    assert twice is not None
    assert await store.by_hash(key.hash) is None  # two rotations ago: forgotten
    assert await store.by_hash(once.hash) == twice
    assert await store.by_hash(twice.hash) == twice


async def test_a_revoked_key_is_still_found_so_callers_can_say_why(store: KeyStore) -> None:
    key = record()
    await store.insert(key)
    await store.compare_and_set(key, revoked(key, now=NOW))
    found = await store.by_hash(key.hash)
    assert found is not None and found.revoked_at == NOW


# --- key semantics on each store ------------------------------------------------------------------


@pytest.fixture
async def service(store: KeyStore) -> tuple[KeyService, FakeClock]:
    clock = FakeClock()
    return KeyService(store, clock, cache_ttl=5), clock


async def test_the_old_secret_works_until_grace_until_exclusive(
    service: tuple[KeyService, FakeClock],
) -> None:
    keys, clock = service
    old, key = await keys.create()
    new, rotated_key = await keys.rotate(key.id, grace_seconds=60)
    assert rotated_key.grace_until == clock.wall() + 60
    clock.advance(59.5)
    assert (await keys.authenticate(old)).id == key.id
    clock.advance(0.5)  # now == grace_until: over
    with pytest.raises(AuthenticationError, match="grace period has ended"):
        await keys.authenticate(old)
    assert (await keys.authenticate(new)).id == key.id


async def test_a_key_expires_at_expires_at(service: tuple[KeyService, FakeClock]) -> None:
    keys, clock = service
    secret, _ = await keys.create(expires_at=clock.wall() + 10)
    clock.advance(9.5)
    await keys.authenticate(secret)
    clock.advance(0.5)
    with pytest.raises(AuthenticationError, match="expired"):
        await keys.authenticate(secret)


async def test_revocation_stops_every_secret_of_the_key(service: tuple[KeyService, FakeClock]) -> None:
    keys, _ = service
    old, key = await keys.create()
    new, _ = await keys.rotate(key.id, grace_seconds=60)
    for secret in (old, new):
        await keys.authenticate(secret)  # both cached now
    await keys.revoke(key.id)
    for secret in (old, new):
        with pytest.raises(AuthenticationError, match="revoked"):
            await keys.authenticate(secret)


@pytest.mark.parametrize("state", ["revoked", "expired"])
async def test_a_key_that_cannot_work_is_not_rotated(
    service: tuple[KeyService, FakeClock], state: str
) -> None:
    keys, clock = service
    _, key = await keys.create(expires_at=clock.wall() + 10)
    if state == "revoked":
        await keys.revoke(key.id)
    else:
        clock.advance(10)
    before = await keys.get(key.id)
    with pytest.raises(Conflict) as refused:
        await keys.rotate(key.id, grace_seconds=60)
    assert refused.value.status == 409 and refused.value.code == f"key_{state}"
    assert await keys.get(key.id) == before


@pytest.mark.parametrize("paused", ["rotate", "revoke"])
async def test_concurrent_rotate_and_revoke_leave_the_key_revoked(store: KeyStore, paused: str) -> None:
    """The first call reads the key, then waits while the other runs to the end, then writes."""
    pausing = PausingKeyStore(store)
    keys = KeyService(pausing, FakeClock())
    old, key = await keys.create()
    pausing.after_get.arm()
    if paused == "rotate":
        first = asyncio.create_task(keys.rotate(key.id, grace_seconds=60))
        await pausing.after_get.reached.wait()
        await keys.revoke(key.id)
    else:
        first = asyncio.create_task(keys.revoke(key.id))
        await pausing.after_get.reached.wait()
        new, _ = await keys.rotate(key.id, grace_seconds=60)
    pausing.after_get.release()
    if paused == "rotate":
        with pytest.raises(Conflict) as refused:  # it saw the revocation on its second read
            await first
        assert refused.value.code == "key_revoked"
    else:
        await first
        with pytest.raises(AuthenticationError, match="revoked"):
            await keys.authenticate(new)
    stored = await store.get(key.id)
    assert stored is not None and stored.revoked_at is not None
    with pytest.raises(AuthenticationError, match="revoked"):
        await keys.authenticate(old)


async def test_a_lookup_in_flight_during_revoke_does_not_bring_the_key_back(store: KeyStore) -> None:
    pausing = PausingKeyStore(store)
    keys = KeyService(pausing, FakeClock())
    secret, key = await keys.create()
    pausing.after_by_hash.arm()
    in_flight = asyncio.create_task(keys.authenticate(secret))
    await pausing.after_by_hash.reached.wait()  # the lookup has read the record, not cached it yet
    await keys.revoke(key.id)
    pausing.after_by_hash.release()
    await in_flight  # it began before the revocation: accepting this one request is fair
    with pytest.raises(AuthenticationError, match="revoked"):
        await keys.authenticate(secret)
