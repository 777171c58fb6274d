"""Virtual-key authentication costs: store lookup by hash, the auth cache under a burst, revoke.

    .venv/bin/python bench/keys_auth.py

A timing script, not a test: it prints microseconds per operation and store reads, to compare
two versions of ``llmrelay.keys`` on the same machine (run it with ``PYTHONPATH`` pointing at the
other version's ``src``). Only the public ``KeyService`` API is used, with the in-memory store
and a clock that stands still (so no cache entry expires and only the eviction policy shows).
"""

from __future__ import annotations

import asyncio
import time

from llmrelay.clock import FakeClock
from llmrelay.keys import KeyService, VirtualKey
from llmrelay.keys.store import MemoryKeyStore


class CountingStore(MemoryKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def by_hash(self, digest: str) -> VirtualKey | None:
        self.reads += 1
        return await super().by_hash(digest)


async def secrets_for(service: KeyService, n: int) -> list[str]:
    return [(await service.create())[0] for _ in range(n)]


async def store_lookup(n: int, lookups: int = 2_000) -> float:
    """Cache off: every authentication reads the store, which holds ``n`` keys."""
    service = KeyService(MemoryKeyStore(), FakeClock(), cache_size=0)
    secrets = await secrets_for(service, n)
    probe = [secrets[(i * 7_919) % n] for i in range(lookups)]  # spread over the whole store
    start = time.perf_counter()
    for secret in probe:
        await service.authenticate(secret)
    return (time.perf_counter() - start) / lookups * 1e6


async def burst(rounds: int = 50, hot: int = 800, cold_per_round: int = 100) -> tuple[float, int, int]:
    """A cache of 1,000 and 800 busy keys, each round also seeing 100 keys never seen before."""
    store = CountingStore()
    service = KeyService(store, FakeClock(), cache_size=1_000)
    hot_secrets = await secrets_for(service, hot)
    cold_secrets = await secrets_for(service, rounds * cold_per_round)
    calls = 0
    start = time.perf_counter()
    for r in range(rounds):
        for secret in hot_secrets:
            await service.authenticate(secret)
        for secret in cold_secrets[r * cold_per_round : (r + 1) * cold_per_round]:
            await service.authenticate(secret)
        calls += hot + cold_per_round
    return (time.perf_counter() - start) / calls * 1e6, store.reads, calls


async def revoke_with_full_cache(cached: int = 10_000, revokes: int = 200) -> float:
    service = KeyService(MemoryKeyStore(), FakeClock(), cache_size=cached + 1)
    secrets = await secrets_for(service, cached)
    for secret in secrets:
        await service.authenticate(secret)
    ids = [(await service.create())[1].id for _ in range(revokes)]
    start = time.perf_counter()
    for key_id in ids:
        await service.revoke(key_id)
    return (time.perf_counter() - start) / revokes * 1e6


async def main() -> None:
    for n in (1_000, 10_000, 100_000):
        print(f"store lookup, {n:>7,} keys, cache off: {await store_lookup(n):9.1f} µs/auth")
    per_call, reads, calls = await burst()
    print(f"burst, 800 busy + 100 new keys a round, cache 1,000: {per_call:6.1f} µs/auth")
    print(f"  store reads: {reads:,} for {calls:,} authentications")
    print(f"revoke with 10,000 cached entries: {await revoke_with_full_cache():9.1f} µs/revoke")


if __name__ == "__main__":
    asyncio.run(main())
