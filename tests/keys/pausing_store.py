"""A key store wrapper that stops right after a read, to pin down an interleaving.

A race test arms a :class:`Pause`, starts the racing call as a task, waits until that call has
read (``reached``), runs the other call to the end, then lets the first one go on (:meth:`release`).
Only asyncio events order the steps: no sleeps, and the same interleaving on every run. It wraps
any backend, so the contract suite runs the same races on each.
"""

from __future__ import annotations

import asyncio

from llmrelay.keys import VirtualKey
from llmrelay.keys.store import KeyStore


class Pause:
    """Holds the next read after :meth:`arm` (only that one) until :meth:`release`."""

    def __init__(self) -> None:
        self._armed = False
        self.reached = asyncio.Event()
        self._go = asyncio.Event()

    def arm(self) -> None:
        self._armed = True

    def release(self) -> None:
        self._go.set()

    async def __call__(self) -> None:
        if self._armed:
            self._armed = False
            self.reached.set()
            await self._go.wait()


class PausingKeyStore:
    def __init__(self, inner: KeyStore) -> None:
        self.inner = inner
        self.after_get = Pause()
        self.after_by_hash = Pause()

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def by_hash(self, digest: str) -> VirtualKey | None:
        key = await self.inner.by_hash(digest)
        await self.after_by_hash()
        return key

    async def get(self, key_id: str) -> VirtualKey | None:
        key = await self.inner.get(key_id)
        await self.after_get()
        return key

    async def list(self) -> list[VirtualKey]:
        return await self.inner.list()

    async def insert(self, key: VirtualKey) -> None:
        await self.inner.insert(key)

    async def compare_and_set(self, current: VirtualKey, new: VirtualKey) -> VirtualKey | None:
        return await self.inner.compare_and_set(current, new)
