"""Clearing the cache in O(1) on every store: a generation token per alias, hashed into every key.

``llmrelay cache clear`` (``POST /admin/cache/clear``) writes a fresh random token under
``gen:<alias>`` (one alias) or ``gen:*`` (the whole namespace) in the cache's own KV. Every key
the cache policy computes hashes in both tokens (:meth:`Generations.of`), so after a clear no
lookup can reach an old entry: the old entries are not deleted, they are unreachable and leave as
their TTL or the store's LRU removes them. One write, whatever the backend (memory, SQLite,
Redis) and however many entries; no scan, no delete-by-prefix.

A random token rather than a counter: two clears racing on different replicas cannot write the
same value, and no read-modify-write is needed. Each process keeps the tokens it read for
``refresh`` seconds (1 by default), so a clear in one process takes effect there at once and in
other workers and replicas sharing the store within that time. A store that fails while the
tokens are read keeps the last known ones (the cache then misses through its own error path).
"""

from __future__ import annotations

import logging
import os

from llmrelay.clock import Clock
from llmrelay.stores.base import KV

log = logging.getLogger("llmrelay.cache")

ALL = "*"
"""The generation that every alias's keys carry: bumping it clears the whole namespace."""


class Generations:
    def __init__(self, kv: KV, clock: Clock, *, refresh: float = 1.0) -> None:
        self._kv = kv
        self._clock = clock
        self._refresh = refresh
        self._known: dict[str, tuple[str, float]] = {}  # alias -> (token, read at, monotonic)

    async def of(self, alias: str) -> str:
        """The tokens an ``alias``'s keys carry now: the namespace's and its own."""
        return f"{await self._token(ALL)}.{await self._token(alias)}"

    async def clear(self, alias: str | None) -> None:
        """Make every entry of ``alias`` (``None``: of every alias) unreachable, at once here."""
        name = ALL if alias is None else alias
        token = os.urandom(8).hex()
        await self._kv.set(_key(name), token.encode())
        self._known[name] = (token, self._clock.now())

    async def _token(self, name: str) -> str:
        now = self._clock.now()
        known = self._known.get(name)
        if known is not None and now - known[1] < self._refresh:
            return known[0]
        token = known[0] if known is not None else "0"
        reading = self._known[name] = (token, now)  # concurrent callers use it meanwhile: one read
        try:
            raw = await self._kv.get(_key(name))
        except Exception:
            log.warning("cache store unavailable reading the generation of %s", name, exc_info=True)
            return token
        token = raw.decode() if raw is not None else "0"
        if self._known.get(name) is reading:  # else a clear here wrote a newer token meanwhile
            self._known[name] = (token, now)
        return self._known[name][0]


def _key(name: str) -> str:
    return "gen:" + name
