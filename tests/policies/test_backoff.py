import pytest

from llmrelay.policies.backoff import retry_delay


@pytest.mark.parametrize(
    ("attempt", "retry_after", "draw", "expected"),
    [
        (0, None, 1.0, 0.5),  # base * 2**0, full draw
        (1, None, 1.0, 1.0),
        (2, None, 1.0, 2.0),
        (3, None, 0.5, 2.0),  # jitter: half of 4.0
        (10, None, 1.0, 8.0),  # capped
        (10, None, 0.0, 0.0),  # full jitter reaches zero
        (0, 3.0, 0.9, 3.0),  # Retry-After wins over the formula
        (5, 0.05, 0.9, 0.05),
        (0, 60.0, 0.9, 60.0),  # at the cap: still honoured
        (0, 61.0, 0.9, None),  # beyond it: do not retry here, fail over
    ],
)
def test_retry_delay(attempt: int, retry_after: float | None, draw: float, expected: float | None) -> None:
    delay = retry_delay(
        attempt, retry_after=retry_after, base=0.5, cap=8.0, max_retry_after=60.0, rand=lambda: draw
    )
    assert delay == expected
