import asyncio

import pytest

from llmrelay.clock import FakeClock, SystemClock


async def test_fake_sleep_advances_time_without_waiting() -> None:
    clock = FakeClock(start=10.0)
    await clock.sleep(5)
    assert clock.now() == 15.0
    assert clock.sleeps == [5]
    assert clock.wall() - clock.now() == 1_700_000_000.0 - 10.0


async def test_fake_timeout_fires_when_time_passes_the_deadline() -> None:
    clock = FakeClock()
    with pytest.raises(TimeoutError):
        async with clock.timeout(3):
            await clock.sleep(2)
            await clock.sleep(2)
            await asyncio.Event().wait()


async def test_fake_timeout_does_not_fire_before_the_deadline() -> None:
    clock = FakeClock()
    async with clock.timeout(3):
        await clock.sleep(2.9)
    assert clock.now() == pytest.approx(1002.9)


async def test_zero_timeout_fires_at_once() -> None:
    with pytest.raises(TimeoutError):
        async with FakeClock().timeout(0):
            await asyncio.Event().wait()


async def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    a = clock.now()
    await clock.sleep(0)
    assert clock.now() >= a
