from __future__ import annotations

import random

import pytest

from llmrelay.clock import FakeClock
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.strategies import order_targets


def healths(clock: FakeClock, n: int) -> list[TargetHealth]:
    return [TargetHealth(clock) for _ in range(n)]


def test_least_latency_prefers_the_faster_of_two_draws() -> None:
    clock = FakeClock()
    health = healths(clock, 2)
    for target, seconds in ((0, 0.9), (1, 0.1)):
        started = health[target].started()
        clock.advance(seconds)
        health[target].finished(started, ok=True)
    rand = random.Random(3).random
    firsts = [order_targets("least-latency", [1, 1], health, [0, 0], rand)[0] for _ in range(50)]
    assert firsts == [1] * 50


def test_unmeasured_targets_get_tried() -> None:
    clock = FakeClock()
    health = healths(clock, 2)
    started = health[0].started()
    clock.advance(0.2)
    health[0].finished(started, ok=True)
    assert order_targets("least-latency", [1, 1], health, [0, 0], random.Random(1).random)[0] == 1


def test_least_busy_and_cheapest() -> None:
    clock = FakeClock()
    health = healths(clock, 3)
    health[0].started()
    health[0].started()
    health[2].started()
    assert order_targets("least-busy", [1, 1, 1], health, [0, 0, 0], random.Random(2).random) == [1, 2, 0]
    idle = healths(clock, 3)
    assert order_targets("cheapest", [1, 1, 1], idle, [3.0, 0.5, 1.0], random.Random(2).random) == [1, 2, 0]


def test_cooling_targets_go_last_until_their_time_is_up() -> None:
    clock = FakeClock()
    health = healths(clock, 2)
    health[0].cool_down(5)
    rand = random.Random(4).random
    assert all(order_targets("weighted", [100, 1], health, [0, 0], rand) == [1, 0] for _ in range(20))
    clock.advance(5)
    assert [order_targets("weighted", [100, 1], health, [0, 0], rand)[0] for _ in range(20)].count(0) > 15


@pytest.mark.parametrize(
    ("costs", "weights", "expected"),
    [
        ([3.0, 0.5, 1.0], [1, 1, 1], [1, 2, 0]),
        # unknown cost goes after every priced target, even an expensive one
        ([None, 0.5, 9.0], [1, 1, 1], [1, 2, 0]),
        # a self-hosted target at zero comes first
        ([0.002, 0.0, None], [1, 1, 1], [1, 0, 2]),
        # equal costs keep the weighted order: the heavy target leads
        ([1.0, 1.0], [1, 1_000_000], [1, 0]),
        ([None, None], [1_000_000, 1], [0, 1]),
    ],
)
def test_cheapest_ranks_by_estimated_cost(
    costs: list[float | None], weights: list[float], expected: list[int]
) -> None:
    idle = healths(FakeClock(), len(costs))
    assert order_targets("cheapest", weights, idle, costs, random.Random(2).random) == expected
