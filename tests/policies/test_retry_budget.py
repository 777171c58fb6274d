from llmrelay.clock import FakeClock
from llmrelay.policies.retry_budget import RetryBudget


def test_floor_allows_retries_at_low_traffic_then_refuses() -> None:
    budget = RetryBudget(FakeClock(), ratio=0.2, window=10, min_per_second=0.5)  # floor: 5 per window
    assert [budget.try_retry() for _ in range(6)] == [True] * 5 + [False]


def test_ratio_of_recent_requests_caps_a_retry_storm() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.2, window=10, min_per_second=0.0)
    for _ in range(100):
        budget.record_request()
    granted = sum(budget.try_retry() for _ in range(100))
    assert granted == 20  # an outage turns 100 requests into at most 120 upstream calls


def test_budget_refills_as_the_window_slides() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.0, window=10, min_per_second=0.1)  # 1 per window
    assert budget.try_retry()
    assert not budget.try_retry()
    clock.advance(10.5)
    assert budget.try_retry()


def test_old_requests_are_forgotten_even_without_retries() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.2, window=10, min_per_second=0.0)
    for _ in range(1000):
        budget.record_request()
        clock.advance(1)
    assert len(budget._requests) <= 11  # bounded by the window, not by the traffic so far
