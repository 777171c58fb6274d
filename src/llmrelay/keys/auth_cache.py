"""The in-process cache in front of the key store on the authentication hot path.

:meth:`KeyService.authenticate <llmrelay.keys.service.KeyService.authenticate>` asks here first: a
hit costs a dict lookup, a miss one store read. Entries live ``ttl`` seconds on the injected clock
(how long a change made through *another* process can go unseen here). At most ``size`` entries:
when full, the least recently used one goes, so a burst of new keys never flushes the busy ones.

Changes made through this process are seen at once: :meth:`AuthCache.forget` drops every secret
cached for a key (an index by key id, no scan), and a lookup that was reading the store while any
key changed does not cache what it read (the generation check), since that record may be the one
just replaced. One generation for all keys keeps this simple: changes are rare admin actions, and
the cost of one is that lookups in flight at that instant read the store again next time.
"""

from __future__ import annotations

from collections import OrderedDict

from llmrelay.keys.model import VirtualKey


class AuthCache:
    def __init__(self, *, ttl: float, size: int) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[str, tuple[VirtualKey, float]] = OrderedDict()  # oldest use first
        self._digests: dict[str, set[str]] = {}  # key id -> digests cached for it
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Read before a store lookup; pass to :meth:`put` with what the lookup found."""
        return self._generation

    def get(self, digest: str, *, now: float) -> VirtualKey | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        key, cached_at = entry
        if now - cached_at >= self._ttl:
            self._drop(digest)
            return None
        self._entries.move_to_end(digest)
        return key

    def put(self, digest: str, key: VirtualKey, *, now: float, generation: int) -> None:
        """Cache ``key`` unless a key changed since ``generation`` was read (it may be stale)."""
        if generation != self._generation:
            return
        if digest in self._entries:
            self._drop(digest)
        self._entries[digest] = (key, now)
        self._digests.setdefault(key.id, set()).add(digest)
        while len(self._entries) > self._size:
            self._drop(next(iter(self._entries)))

    def forget(self, key_id: str) -> None:
        """The key changed: drop its entries and keep lookups in flight from caching it."""
        self._generation += 1
        for digest in self._digests.pop(key_id, set()):
            del self._entries[digest]

    def _drop(self, digest: str) -> None:
        key, _ = self._entries.pop(digest)
        digests = self._digests[key.id]
        digests.discard(digest)
        if not digests:
            del self._digests[key.id]
