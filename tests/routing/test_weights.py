import random
from collections import Counter

from llmrelay.routing.weights import weighted_order


def test_single_target() -> None:
    assert weighted_order([5.0], random.random) == [0]


def test_every_target_once() -> None:
    rand = random.Random(1).random
    for _ in range(100):
        assert sorted(weighted_order([1.0, 2.0, 3.0], rand)) == [0, 1, 2]


def test_first_pick_follows_weights() -> None:
    rand = random.Random(7).random
    firsts = Counter(weighted_order([3.0, 1.0], rand)[0] for _ in range(4000))
    share = firsts[0] / 4000
    assert 0.72 < share < 0.78  # expected 0.75


def test_zero_draw_is_safe() -> None:
    assert sorted(weighted_order([1.0, 1.0], lambda: 0.0)) == [0, 1]
