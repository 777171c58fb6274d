"""The memory KV's bounds: least-recently-used eviction, a byte cap, and claims kept until done."""

from __future__ import annotations

import pytest

from llmrelay.clock import FakeClock
from llmrelay.stores.base import StoreFull
from llmrelay.stores.memory import MemoryKV


async def keys_of(kv: MemoryKV, names: str) -> list[str]:
    return [name for name in names if await kv.get(name) is not None]


async def test_evicts_the_least_recently_used_not_the_oldest_inserted() -> None:
    kv = MemoryKV(FakeClock(), max_entries=3)
    for name in "abc":
        await kv.set(name, b"v")
    assert await kv.get("a") == b"v"  # a is now the most recently used
    await kv.set("d", b"v")
    assert await keys_of(kv, "abcd") == ["a", "c", "d"]
    assert kv.entries == 3


async def test_a_write_also_counts_as_use() -> None:
    kv = MemoryKV(FakeClock(), max_entries=2)
    await kv.set("a", b"1")
    await kv.set("b", b"1")
    await kv.set("a", b"2")
    await kv.set("c", b"1")
    assert await keys_of(kv, "abc") == ["a", "c"]


async def test_byte_cap_counts_keys_and_values() -> None:
    kv = MemoryKV(FakeClock(), max_entries=100, max_bytes=30)
    for name in "abc":
        await kv.set(name, b"x" * 9)  # 10 bytes each: exactly full
    assert kv.size == 30
    await kv.set("d", b"x" * 19)  # 20 bytes: a and b go
    assert await keys_of(kv, "abcd") == ["c", "d"]
    assert kv.size == 30
    await kv.delete("c")
    assert kv.size == 20
    with pytest.raises(StoreFull):
        await kv.set("e", b"x" * 40)  # bigger than the whole cap


async def test_expired_entries_are_dropped_lazily_and_free_their_bytes() -> None:
    clock = FakeClock()
    kv = MemoryKV(clock, max_entries=10)
    await kv.set("a", b"v", ttl=5)
    clock.advance(5)
    assert kv.entries == 1  # nothing swept in the background
    assert await kv.get("a") is None
    assert kv.entries == 0 and kv.size == 0


async def test_claims_are_never_evicted_by_other_writes() -> None:
    kv = MemoryKV(FakeClock(), max_entries=3)
    assert await kv.set_if_absent("claim", b"pending", ttl=600)
    for i in range(10):
        await kv.set(f"churn{i}", b"v")
    assert await kv.get("claim") == b"pending"
    await kv.set("claim", b"done")  # completed: now an ordinary entry, evicted in LRU order
    await kv.set("x", b"v")
    await kv.set("y", b"v")
    await kv.set("z", b"v")
    assert await kv.get("claim") is None


async def test_a_namespace_full_of_claims_refuses_new_ones_but_completes_old_ones() -> None:
    clock = FakeClock()
    kv = MemoryKV(clock, max_entries=2, max_bytes=40)
    assert await kv.set_if_absent("a", b"pending", ttl=600)
    assert await kv.set_if_absent("b", b"pending", ttl=600)
    with pytest.raises(StoreFull) as info:
        await kv.set_if_absent("c", b"pending", ttl=600)
    assert info.value.status == 503 and "in-flight claims" in info.value.message
    with pytest.raises(StoreFull):
        await kv.set("c", b"v")
    await kv.set("a", b"d" * 30, ttl=600)  # completing a claim is never refused
    assert await kv.get("a") == b"d" * 30 and await kv.get("b") == b"pending"
    clock.advance(600)  # leases run out: the slots come back
    assert await kv.set_if_absent("c", b"pending", ttl=600)
