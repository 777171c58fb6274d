"""In-process KV: the default for one replica and for tests. TTLs run on the injected clock.

Bounded: past ``max_entries`` expired entries are swept, then the oldest inserted are dropped
(idempotency records and cache entries are both safe to lose; they only cost a recomputation).
"""

from __future__ import annotations

from llmrelay.clock import Clock


class MemoryKV:
    def __init__(self, clock: Clock, *, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._data: dict[str, tuple[bytes, float | None]] = {}

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        self._data.clear()

    async def ping(self) -> bool:
        return True

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._clock.now():
            del self._data[key]
            return None
        return value

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._data.pop(key, None)
        self._data[key] = (value, None if ttl is None else self._clock.now() + ttl)
        if len(self._data) > self._max:
            self._evict()

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl=ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def _evict(self) -> None:
        now = self._clock.now()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]
        while len(self._data) > self._max:
            del self._data[next(iter(self._data))]
