"""Replicas' semantic indexes kept in step through Redis.

Each replica searches its own in-process index (:mod:`.index`), but the answers live in the shared
cache store. When the store is Redis, every question a replica remembers is also appended to a
Redis stream (``llmrelay:<namespace>:semantic``, capped near ``max_entries`` with ``MAXLEN ~`` and
trimmed of questions older than the longest ``ttl``):
its alias, partition, prompt, exact key, expiry and vector (float32 bytes, so no replica embeds
it again). Each replica reads the stream in the background (``XREAD BLOCK`` on a connection of its
own) and adds the others' questions to its index; at start it reads the stream from the beginning,
skipping what has expired, so a new replica serves semantic hits for what others cached.

Nothing here is on a request's path: a publish is sent without waiting for its reply (lost, at
worst, while Redis is down: that question is then only in this replica's index), and the reader
retries with a capped backoff while Redis is unreachable (logged once per outage). An entry whose
answer has left the store is dropped from an index when a lookup finds it gone, as for local ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from llmrelay.cache.semantic import Semantic
from llmrelay.clock import Clock
from llmrelay.stores.resp import Connection, RedisDown, ReplyError

log = logging.getLogger("llmrelay.cache")

BLOCK_MS = 5_000
"""How long one ``XREAD`` waits for news before it asks again."""
_PAGE = 500
_SLACK = 60.0
_FIELDS = (b"origin", b"alias", b"partition", b"prompt", b"key", b"expires", b"vector")


class IndexSync:
    def __init__(
        self,
        url: str,
        namespace: str,
        semantics: dict[str, Semantic],
        clock: Clock,
        *,
        max_len: int,
        max_ttl: float,
    ) -> None:
        self._stream = f"llmrelay:{namespace}:semantic"
        self._semantics = semantics
        self._clock = clock
        self._max_len = max_len
        self._max_ttl = max_ttl
        self._origin = os.urandom(8).hex()  # this replica: its own questions are in its index already
        self._writer = Connection(url, connect_timeout=2.0, call_timeout=2.0)
        # XREAD BLOCK answers within BLOCK_MS; a Redis silent for longer than that is down.
        self._reader = Connection(url, connect_timeout=2.0, call_timeout=BLOCK_MS / 1000 + 5.0)
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.adopted = 0
        """Questions added from other replicas."""
        self.down = False
        """Redis cannot be read now: this replica's index misses what the others cache meanwhile."""
        self._changed = asyncio.Event()
        for alias, semantic in semantics.items():
            semantic.share(partial(self._publish, alias))

    async def open(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        # What this replica cached last is still shared (each call is bounded by its timeout).
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._writer.close()
        self._reader.close()

    async def wait_until(self, condition: Callable[[IndexSync], bool]) -> None:
        """Until ``condition(self)`` holds, checked after each adoption and each outage's start
        and end (callers bound the wait)."""
        while not condition(self):
            self._changed.clear()
            await self._changed.wait()

    async def ping(self) -> bool:
        return True  # a replica without the others' questions still serves: not a readiness matter

    def _publish(
        self, alias: str, partition: str, prompt: str, key: str, expires: float, vector: Any
    ) -> None:
        fields = (
            "origin", self._origin, "alias", alias, "partition", partition, "prompt", prompt,
            "key", key, "expires", repr(expires), "vector", bytes(vector.astype("float32").tobytes()),
        )  # fmt: skip
        task = asyncio.get_running_loop().create_task(self._append(fields))
        self._pending.add(task)
        task.add_done_callback(self._sent)

    async def _append(self, fields: tuple[str | bytes, ...]) -> None:
        """Add one question, then drop those whose answers have expired everywhere (stream ids
        are Redis's clock in ms; a minute of slack for clocks that disagree)."""
        oldest = int((self._clock.wall() - self._max_ttl - _SLACK) * 1000)
        for command in (
            ("XADD", self._stream, "MAXLEN", "~", self._max_len, "*", *fields),
            ("XTRIM", self._stream, "MINID", max(oldest, 0)),
        ):
            reply = await self._writer.call(*command)
            if isinstance(reply, ReplyError):
                raise reply

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a semantic cache question was not shared with the other replicas")

    async def _follow(self) -> None:
        """Read the stream from its start, then wait for what comes, for as long as this runs."""
        last = b"0-0"
        delay = 0.5
        while True:
            try:
                reply = await self._reader.call(
                    "XREAD", "COUNT", _PAGE, "BLOCK", BLOCK_MS, "STREAMS", self._stream, last
                )
                if isinstance(reply, ReplyError):
                    raise RedisDown(str(reply))
            except RedisDown as err:
                if not self.down:
                    log.warning("the semantic cache cannot follow the other replicas: %s", err)
                    self.down = True
                    self._changed.set()
                await self._clock.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if self.down:
                log.info("the semantic cache follows the other replicas again")
                self.down, delay = False, 0.5
                self._changed.set()
            for entry_id, fields in _entries(reply):
                last = entry_id
                self._adopt(fields)
            self._changed.set()

    def _adopt(self, fields: dict[bytes, bytes]) -> None:
        if fields.get(b"origin") == self._origin.encode() or any(f not in fields for f in _FIELDS):
            return
        try:
            semantic = self._semantics.get(fields[b"alias"].decode())
            expires = float(fields[b"expires"])
            if semantic is None or expires <= self._clock.wall():
                return
            adopted = semantic.adopt(
                fields[b"partition"].decode(), fields[b"prompt"].decode(), fields[b"key"].decode(),
                expires, fields[b"vector"],
            )  # fmt: skip
        except ValueError:  # not written by this version (UnicodeDecodeError is one too)
            log.debug("an unreadable entry of the semantic stream was skipped")
            return
        if adopted:
            self.adopted += 1


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """``XREAD``'s reply (``None`` when nothing came) as (entry id, fields) pairs."""
    if not reply:
        return []
    found = []
    for _stream, entries in reply:
        for entry_id, flat in entries:
            found.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
    return found
