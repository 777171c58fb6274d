from __future__ import annotations

from llmrelay.keys import VirtualKey
from llmrelay.keys.auth_cache import AuthCache


def key(key_id: str) -> VirtualKey:
    return VirtualKey(id=key_id, hash="h-" + key_id, display="d", created_at=0.0)


def test_entries_live_ttl_seconds() -> None:
    cache = AuthCache(ttl=5, size=10)
    cache.put("d1", key("a"), now=100, generation=cache.generation)
    assert cache.get("d1", now=104.9) == key("a")
    assert cache.get("d1", now=105) is None
    assert len(cache) == 0


def test_forget_drops_every_secret_of_the_key_and_nothing_else() -> None:
    cache = AuthCache(ttl=5, size=10)
    for digest, owner in (("current", "a"), ("previous", "a"), ("other", "b")):
        cache.put(digest, key(owner), now=0, generation=cache.generation)
    cache.forget("a")
    assert cache.get("current", now=0) is None and cache.get("previous", now=0) is None
    assert cache.get("other", now=0) == key("b")
    cache.forget("a")  # nothing left to drop: fine


def test_a_put_from_before_a_change_is_not_cached() -> None:
    cache = AuthCache(ttl=5, size=10)
    generation = cache.generation
    cache.forget("anything")
    cache.put("d1", key("a"), now=0, generation=generation)
    assert cache.get("d1", now=0) is None
    cache.put("d1", key("a"), now=0, generation=cache.generation)
    assert cache.get("d1", now=0) == key("a")


def test_eviction_keeps_the_key_index_in_step() -> None:
    cache = AuthCache(ttl=5, size=2)
    for i in range(5):
        cache.put(f"d{i}", key(f"k{i}"), now=0, generation=cache.generation)
    assert len(cache) == 2 and cache.get("d0", now=0) is None
    for i in range(5):
        cache.forget(f"k{i}")  # evicted ones are not in the index any more: no KeyError
    assert len(cache) == 0


def test_size_zero_caches_nothing() -> None:
    cache = AuthCache(ttl=5, size=0)
    cache.put("d1", key("a"), now=0, generation=cache.generation)
    assert cache.get("d1", now=0) is None and len(cache) == 0
