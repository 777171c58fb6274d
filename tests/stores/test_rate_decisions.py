"""The GCRA rule as tables on a fake clock, then the memory backend's all-or-nothing takes,
reconcile and concurrency leases (the Redis backend passes the same contract in
test_rate_limits_contract.py)."""

from __future__ import annotations

import math

import pytest

from llmrelay.clock import FakeClock
from llmrelay.stores.rates import Rate, Take, adjusted, decide, nearest
from llmrelay.stores.rates_memory import SWEEP_EVERY, MemoryRateLimits

RPM_6 = Rate(6, 60.0)  # a burst of 6, then one every 10 s


def run(steps: list[tuple[float, float]], rate: Rate = RPM_6) -> list[tuple[bool, int, float]]:
    """(seconds since start, units) -> (allowed, remaining, retry_after) for each take in turn."""
    tat, out = 0.0, []
    for at, units in steps:
        tat, d = decide(tat, 1000.0 + at, units, rate)
        out.append((d.allowed, d.remaining, round(d.retry_after, 6)))
    return out


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # a full burst, then the 7th is refused until one unit has refilled
        (
            [(0, 1)] * 7,
            [
                (True, 5, 0),
                (True, 4, 0),
                (True, 3, 0),
                (True, 2, 0),
                (True, 1, 0),
                (True, 0, 0),
                (False, 0, 10),
            ],
        ),
        # refill: after 10 s exactly one more fits, after 25 s two more (and half a unit left over)
        (
            [(0, 6), (9.9, 1), (10, 1), (35, 1), (35, 1), (35, 1)],
            [
                (True, 0, 0),
                (False, 0, 0.1),
                (True, 0, 0),
                (True, 1, 0),
                (True, 0, 0),
                (False, 0, 5),
            ],
        ),
        # a take of several units (tokens) needs that many at once
        ([(0, 4), (0, 3), (20, 3)], [(True, 2, 0), (False, 2, 10), (True, 1, 0)]),
        # idle for long: never more than the burst
        ([(0, 6), (3600, 6), (3600, 1)], [(True, 0, 0), (True, 0, 0), (False, 0, 10)]),
        # a take larger than the whole limit can never fit
        ([(0, 7)], [(False, 6, math.inf)]),
        # zero units (a peek) says what is left without charging
        ([(0, 5), (0, 0), (0, 1)], [(True, 1, 0), (True, 1, 0), (True, 0, 0)]),
    ],
)
def test_gcra_table(steps: list[tuple[float, float]], expected: list[tuple[bool, int, float]]) -> None:
    assert run(steps) == expected


def test_reset_is_time_until_full() -> None:
    tat, d = decide(0.0, 1000.0, 3, RPM_6)
    assert d.reset == pytest.approx(30.0)
    _, d = decide(tat, 1015.0, 0, RPM_6)
    assert d.reset == pytest.approx(15.0)


@pytest.mark.parametrize(
    ("tat", "units", "expected"),
    [
        (1030.0, -2, 1010.0),  # refund two units: 20 s earlier
        (1030.0, -5, 1000.0),  # never before now
        (1030.0, 2, 1050.0),  # actual usage above the reservation: charged without asking
        (900.0, 1, 1010.0),  # a stale state counts from now
        (900.0, -1, 1000.0),
    ],
)
def test_adjust_table(tat: float, units: float, expected: float) -> None:
    assert adjusted(tat, 1000.0, units, RPM_6) == pytest.approx(expected)


def test_nearest_is_the_smallest_fraction_left() -> None:
    _, a = decide(0.0, 0.0, 5, RPM_6)  # 1 of 6 left
    _, b = decide(0.0, 0.0, 50, Rate(100, 60))  # 50 of 100 left
    assert nearest([b, a]) is a
    assert nearest([]) is None


async def test_memory_take_is_all_or_nothing() -> None:
    clock = FakeClock()
    store = MemoryRateLimits(clock)
    key, user = Take("k", 1, Rate(10, 60)), Take("u", 1, Rate(2, 60))
    assert [d.allowed for d in await store.take([key, user])] == [True, True]
    assert [d.allowed for d in await store.take([key, user])] == [True, True]
    third = await store.take([key, user])
    assert [d.allowed for d in third] == [True, False]
    # the refused take charged the key nothing: 8 of 10 left
    assert (await store.peek([Take("k", 0, Rate(10, 60))]))[0].remaining == 8
    clock.advance(30)
    assert [d.allowed for d in await store.take([key, user])] == [True, True]


async def test_memory_reservation_and_reconcile() -> None:
    clock = FakeClock()
    store = MemoryRateLimits(clock)
    tpm = Rate(1000, 60)
    assert (await store.take([Take("t", 800, tpm)]))[0].remaining == 200
    await store.adjust([Take("t", -600, tpm)])  # actual 200 of the 800 reserved
    assert (await store.peek([Take("t", 0, tpm)]))[0].remaining == 800
    await store.adjust([Take("t", 500, tpm)])  # a stream that ran past its estimate
    assert (await store.peek([Take("t", 0, tpm)]))[0].remaining == 300
    await store.adjust([Take("t", -5000, tpm)])  # a refund never makes room beyond the limit
    assert (await store.peek([Take("t", 0, tpm)]))[0].remaining == 1000


async def test_memory_concurrency_leases() -> None:
    clock = FakeClock()
    store = MemoryRateLimits(clock)
    assert [d.allowed for d in await store.take([], slots=[("c", 2), ("t", 5)], lease="a", ttl=60)] == [
        True,
        True,
    ]
    assert (await store.take([], slots=[("c", 2)], lease="b", ttl=60))[0].allowed
    refused = await store.take([], slots=[("c", 2), ("t", 5)], lease="c", ttl=60)
    assert [d.allowed for d in refused] == [False, True]
    await store.leave(["c", "t"], "a")
    assert (await store.take([], slots=[("c", 2)], lease="c", ttl=60))[0].allowed
    # a lease its holder never released (a crashed caller) runs out by itself
    clock.advance(61)
    assert (await store.take([], slots=[("c", 2)], lease="d", ttl=60))[0].remaining == 1


async def test_memory_sweeps_expired_counters() -> None:
    clock = FakeClock()
    store = MemoryRateLimits(clock)
    for i in range(SWEEP_EVERY - 1):
        await store.take([Take(f"k{i}", 1, Rate(10, 1))])
    clock.advance(2)
    await store.take([Take("last", 1, Rate(10, 1))])
    assert len(store._tats) == 1
