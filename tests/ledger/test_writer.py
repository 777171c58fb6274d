"""The batched ledger writer on a fake clock: batches, an outage (buffered, retried, nothing lost or
written twice), the buffer's bound, a store unreachable at start-up, draining at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from llmrelay.clock import FakeClock
from llmrelay.ledger import LedgerEntry, LedgerWriter, UsageQuery, UsageRow


class FakeStore:
    """Records batches; ``down`` makes open and write fail like an unreachable database."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.batches: list[list[str]] = []
        self.attempts = 0
        self.attempted = asyncio.Event()
        self.opened = False
        self.closed = False

    async def open(self) -> None:
        if self.down:
            raise ConnectionRefusedError("connect call failed")
        self.opened = True

    async def aclose(self) -> None:
        self.closed = True

    async def ping(self) -> bool:
        return not self.down

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        self.attempts += 1
        self.attempted.set()
        if self.down:
            raise ConnectionResetError("connection lost")
        self.batches.append([e.request_id for e in entries])

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        return []

    @property
    def ids(self) -> list[str]:
        return [i for batch in self.batches for i in batch]


def rows(n: int, start: int = 0) -> list[LedgerEntry]:
    return [LedgerEntry(request_id=f"r{i}", at=float(i)) for i in range(start, start + n)]


async def started(store: FakeStore, clock: FakeClock, **options: int | float) -> LedgerWriter:
    writer = LedgerWriter(store, clock, **options)  # type: ignore[arg-type]
    await writer.open()
    return writer


async def test_a_full_batch_is_written_at_once_and_the_rest_on_flush() -> None:
    store, clock = FakeStore(), FakeClock()
    writer = await started(store, clock, batch=3)
    for entry in rows(7):
        writer.record(entry)
    assert await writer.flush()
    assert store.batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    assert (writer.written, writer.pending) == (7, 0)
    await writer.aclose()


async def test_rows_wait_for_the_interval_when_no_batch_is_full() -> None:
    store, clock = FakeStore(), FakeClock()
    writer = await started(store, clock, batch=100, interval=1.0)
    for entry in rows(2):
        writer.record(entry)
    await asyncio.sleep(0)
    assert store.batches == []
    store.attempted.clear()
    clock.advance(1.0)
    await store.attempted.wait()
    assert store.ids == ["r0", "r1"]
    await writer.aclose()


async def test_an_outage_buffers_then_writes_every_row_once(caplog: pytest.LogCaptureFixture) -> None:
    store, clock = FakeStore(), FakeClock()
    writer = await started(store, clock, batch=2, interval=1.0, backoff_cap=4.0)
    store.down = True
    with caplog.at_level(logging.WARNING, "llmrelay.ledger"):
        for entry in rows(5):
            writer.record(entry)
        for _ in range(3):  # the flusher retries with backoff while the store is down
            store.attempted.clear()
            clock.advance(4.0)
            await store.attempted.wait()
    assert (writer.written, writer.pending) == (0, 5)
    assert sum("buffering and retrying" in r.message for r in caplog.records) == 1  # once per outage
    store.down = False
    assert await writer.flush()
    assert sorted(store.ids) == [f"r{i}" for i in range(5)]  # all, none twice
    await writer.aclose()


async def test_the_buffer_is_bounded() -> None:
    store, clock = FakeStore(down=True), FakeClock()
    writer = await started(store, clock, batch=100, capacity=5)
    for entry in rows(8):
        writer.record(entry)
    assert (writer.pending, writer.dropped) == (5, 3)
    store.down = False
    assert await writer.flush()
    assert store.ids == [f"r{i}" for i in range(5)]
    await writer.aclose()


async def test_a_store_down_at_start_up_is_opened_later() -> None:
    store, clock = FakeStore(down=True), FakeClock()
    writer = await started(store, clock, batch=2)  # does not raise: the gateway starts anyway
    assert not store.opened
    for entry in rows(2):
        writer.record(entry)
    store.down = False
    assert await writer.flush()
    assert store.opened and store.ids == ["r0", "r1"]
    await writer.aclose()


async def test_shutdown_writes_what_is_buffered() -> None:
    store, clock = FakeStore(), FakeClock()
    writer = await started(store, clock, batch=1_000, interval=60.0)
    for entry in rows(2_500):
        writer.record(entry)
    await writer.aclose()
    assert len(store.ids) == 2_500 and store.closed


async def test_shutdown_with_the_store_down_gives_up_after_drain(caplog: pytest.LogCaptureFixture) -> None:
    store, clock = FakeStore(), FakeClock()
    writer = await started(store, clock, batch=10, interval=60.0, drain=3.0)
    store.down = True
    writer.record(rows(1)[0])
    with caplog.at_level(logging.ERROR, "llmrelay.ledger"):
        await writer.aclose()  # bounded by the fake clock's drain timeout: never hangs
    assert "1 rows could not be written" in caplog.text


async def test_a_foreign_exception_from_the_store_is_retried_not_raised() -> None:
    class Broken(FakeStore):
        async def write(self, entries: Sequence[LedgerEntry]) -> None:
            if self.attempts == 0:
                self.attempts += 1
                self.attempted.set()
                raise ValueError("driver bug")
            await super().write(entries)

    store, clock = Broken(), FakeClock()
    writer = await started(store, clock, batch=1, interval=1.0)
    writer.record(rows(1)[0])
    await store.attempted.wait()
    clock.advance(2.0)
    assert await writer.flush()
    assert store.ids == ["r0"] and writer.pending == 0
    await writer.aclose()
