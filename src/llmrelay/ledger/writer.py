"""The batched ledger writer: requests hand it a row and move on; a background task writes batches.

Hot path: :meth:`LedgerWriter.record` appends to a bounded in-memory buffer (no I/O, no await) and
wakes the flusher only when a full batch is waiting; otherwise the flusher wakes every
``interval`` seconds. A batch stays in the buffer until the store has taken it, so a failed write
(PostgreSQL down, the disk full) loses nothing: the flusher logs once per outage, waits with
capped exponential backoff and writes the same rows again. Requests are never blocked and never
fail because of the ledger.

Bounds: at ``capacity`` buffered rows (an outage long enough to fill it) new rows are dropped and
counted (``dropped``), with one warning per outage, rather than growing without limit. On a clean
shutdown :meth:`aclose` writes everything buffered, retrying for up to ``drain`` seconds, and logs
how many rows it could not write if the store never came back. A store that cannot be opened at
start-up is opened later by the flusher, so the gateway starts and serves without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from llmrelay.clock import Clock
from llmrelay.ledger.entry import LedgerEntry
from llmrelay.ledger.store import LedgerStore

log = logging.getLogger("llmrelay.ledger")


class LedgerWriter:
    def __init__(
        self,
        store: LedgerStore,
        clock: Clock,
        *,
        batch: int = 1_000,
        interval: float = 0.5,
        capacity: int = 200_000,
        drain: float = 10.0,
        backoff_cap: float = 10.0,
    ) -> None:
        self.store = store
        self._clock = clock
        self._batch = batch
        self._interval = interval
        self._capacity = capacity
        self._drain = drain
        self._backoff_cap = backoff_cap
        self._buffer: deque[LedgerEntry] = deque()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._opened = False
        self._failing = False
        self._stopping = False
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(self, entry: LedgerEntry) -> None:
        """Buffer ``entry`` for the next batch (never blocks, never raises)."""
        buffer = self._buffer
        if len(buffer) >= self._capacity:
            if not self.dropped:
                log.warning("ledger buffer full (%d rows): dropping new rows until it drains", self._capacity)
            self.dropped += 1
            return
        buffer.append(entry)
        if len(buffer) == self._batch:
            self._wake.set()

    async def open(self) -> None:
        """Start the flusher; the store is opened now if it can be, else later by the flusher."""
        self._stopping = False
        await self._try_open()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llmrelay-ledger")

    async def aclose(self) -> None:
        """Stop the flusher, write what is buffered (retrying up to ``drain`` s), close the store."""
        self._stopping = True
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with self._clock.timeout(self._drain):
                while self._buffer:
                    if not await self._write_one_batch():
                        await self._clock.sleep(min(0.5, self._drain / 10))
        except TimeoutError:
            log.error("ledger: %d rows could not be written before shutdown", len(self._buffer))
        if self._opened:
            self._opened = False
            await self.store.aclose()

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was buffered when called has been written (reports read after it);
        ``False`` if that took longer than ``timeout`` (the store is failing)."""
        target = self.written + len(self._buffer)
        with contextlib.suppress(TimeoutError):
            async with self._clock.timeout(timeout):
                while self.written < target:
                    self._progress.clear()
                    self._wake.set()
                    await self._progress.wait()
        return self.written >= target

    async def _run(self) -> None:
        delay = self._interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            delay = self._interval
            while self._buffer:
                if not await self._write_one_batch():
                    delay = self._next_delay(delay)
                    break

    def _next_delay(self, delay: float) -> float:
        return min(self._backoff_cap, max(delay, self._interval) * 2)

    async def _write_one_batch(self) -> bool:
        if not self._opened and not await self._try_open():
            return False
        batch = [self._buffer[i] for i in range(min(self._batch, len(self._buffer)))]
        try:
            await self.store.write(batch)
        except Exception as err:  # any store failure: keep the rows, retry later
            if not self._failing:
                log.warning(
                    "ledger: cannot write %d rows (%s); buffering and retrying", len(batch), _describe(err)
                )
            self._failing = True
            return False
        for _ in batch:
            self._buffer.popleft()
        self.written += len(batch)
        self._progress.set()
        if self._failing:
            log.warning("ledger: writing again, %d rows still buffered", len(self._buffer))
            self._failing = False
            self.dropped = 0
        return True

    async def _try_open(self) -> bool:
        if self._opened:
            return True
        try:
            await self.store.open()
        except Exception as err:  # unreachable at start-up: the flusher tries again
            if not self._failing:
                log.warning("ledger: store unavailable (%s); buffering and retrying", _describe(err))
            self._failing = True
            return False
        self._opened = True
        return True


def _describe(err: Exception) -> str:
    """The error's class and message, without a URL that may carry a password."""
    text = str(err).split("\n", 1)[0]
    return f"{type(err).__name__}: {text[:200]}" if "://" not in text else type(err).__name__
