"""In-process KV: the default for one replica and for tests. TTLs run on the injected clock.

Bounded per namespace (each :func:`llmrelay.stores.open_kv` call gets its own instance, so cache
churn never evicts idempotency records) by ``max_entries`` and ``max_bytes`` (keys plus values; not
Python's own overhead). Every operation is O(1) amortised; nothing scans the table.

Two kinds of entry:

* **plain** entries (written by ``set``) live in least-recently-used order; at a cap the least
  recently read or written go first. Expired ones are dropped lazily, when touched or evicted.
* **claims** (written by ``set_if_absent`` and not yet overwritten by ``set``) are never evicted:
  for idempotency a claim is a request in flight, and dropping it would let a duplicate run the
  call twice. A claim ends when ``set`` completes it (it becomes plain), ``delete`` frees it or its
  TTL (the lease) runs out. When the namespace is full and only claims are left, a new claim, or a
  ``set`` of a new key, raises :class:`~llmrelay.stores.base.StoreFull` rather than drop anything.
  Completing a claim with ``set`` is never refused; it may hold the namespace over ``max_bytes``
  until later writes evict plain entries.

Expired claims are reclaimed from the oldest first, which is expiry order when a namespace uses one
lease length (idempotency does); any other expired claim goes when its key is next touched.
"""

from __future__ import annotations

from collections import OrderedDict

from llmrelay.clock import Clock
from llmrelay.stores.base import StoreFull

_Entry = tuple[bytes, float | None]  # value, expiry on the clock's monotonic time


class MemoryKV:
    def __init__(
        self,
        clock: Clock,
        *,
        namespace: str = "default",
        max_entries: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._clock = clock
        self._namespace = namespace
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._plain: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._claims: OrderedDict[str, _Entry] = OrderedDict()  # oldest first
        self._bytes = 0

    @property
    def entries(self) -> int:
        return len(self._plain) + len(self._claims)

    @property
    def size(self) -> int:
        """Bytes held (keys plus values), as counted against ``max_bytes``."""
        return self._bytes

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        self._plain.clear()
        self._claims.clear()
        self._bytes = 0

    async def ping(self) -> bool:
        return True

    async def get(self, key: str) -> bytes | None:
        entry = self._live(key)
        if entry is None:
            return None
        if key in self._plain:
            self._plain.move_to_end(key)
        return entry[0]

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        size = self._size(key, value)
        completes_claim = key in self._claims
        self._drop(key)
        if not completes_claim:
            self._make_room(size)
        self._plain[key] = (value, self._expiry(ttl))
        self._bytes += size
        if completes_claim:
            self._make_room(0, keep_newest=True)

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        size = self._size(key, value)
        self._make_room(size)
        self._claims[key] = (value, self._expiry(ttl))
        self._bytes += size
        return True

    async def delete(self, key: str) -> None:
        self._drop(key)

    def _live(self, key: str) -> _Entry | None:
        entry = self._plain.get(key) or self._claims.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self._clock.now():
            self._drop(key)
            return None
        return entry

    def _drop(self, key: str) -> None:
        entry = self._plain.pop(key, None) or self._claims.pop(key, None)
        if entry is not None:
            self._bytes -= self._size(key, entry[0])

    def _make_room(self, size: int, *, keep_newest: bool = False) -> None:
        """Evict until one more entry of ``size`` bytes fits; :class:`StoreFull` if it cannot."""
        if size > self._max_bytes:
            raise StoreFull(
                f"a {size}-byte entry exceeds {self._namespace!r}'s max_bytes ({self._max_bytes})"
            )
        extra = 0 if keep_newest else 1
        self._reap_claims()
        while self.entries + extra > self._max_entries or self._bytes + size > self._max_bytes:
            if len(self._plain) <= (1 if keep_newest else 0):
                if keep_newest:
                    return  # a completed claim is kept even over the byte cap (see module docstring)
                raise StoreFull(
                    f"the {self._namespace!r} state namespace is full of in-flight claims"
                    f" ({len(self._claims)} entries); retry later",
                    retry_after=1.0,
                )
            key, (value, _) = self._plain.popitem(last=False)
            self._bytes -= self._size(key, value)

    def _reap_claims(self) -> None:
        now = self._clock.now()
        while self._claims:
            key, (value, expires) = next(iter(self._claims.items()))
            if expires is None or expires > now:
                return
            del self._claims[key]
            self._bytes -= self._size(key, value)

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock.now() + ttl

    @staticmethod
    def _size(key: str, value: bytes) -> int:
        return len(key) + len(value)
