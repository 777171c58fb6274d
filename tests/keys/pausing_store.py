"""Key stores that stop between a read and what the caller does next, to pin down interleavings.

A race test arms a :class:`Pause`, starts the racing call as a task, waits until that call has
read (``reached``), runs the other call to the end, then lets the first one go on (``release``).
Only asyncio events order the steps: no sleeps, and the same interleaving on every run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmrelay.keys import VirtualKey
from llmrelay.keys.store import MemoryKeyStore, SqliteKeyStore


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


class PausingSqliteKeyStore(SqliteKeyStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.after_get = Pause()
        self.after_by_hash = Pause()

    async def get(self, key_id: str) -> VirtualKey | None:
        key = await super().get(key_id)
        await self.after_get()
        return key

    async def by_hash(self, digest: str) -> VirtualKey | None:
        key = await super().by_hash(digest)
        await self.after_by_hash()
        return key


class PausingMemoryKeyStore(MemoryKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.after_get = Pause()
        self.after_by_hash = Pause()

    async def get(self, key_id: str) -> VirtualKey | None:
        key = await super().get(key_id)
        await self.after_get()
        return key

    async def by_hash(self, digest: str) -> VirtualKey | None:
        key = await super().by_hash(digest)
        await self.after_by_hash()
        return key
