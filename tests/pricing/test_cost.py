"""The cost of a Usage at a Price: a table, including cache reads and cache writes."""

from __future__ import annotations

import pytest

from llmrelay.pricing.cost import cost, estimated_cost, format_usd
from llmrelay.pricing.prices import Price
from llmrelay.types import Usage

MINI = Price(input=0.15, output=0.6, cached_input=0.075)
SONNET = Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75)
FREE = Price(input=0.0, output=0.0)


@pytest.mark.parametrize(
    ("usage", "price", "expected"),
    [
        (Usage(), MINI, 0.0),
        (Usage(input_tokens=1_000_000), MINI, 0.15),
        (Usage(output_tokens=1_000_000), MINI, 0.6),
        (Usage(input_tokens=1000, output_tokens=500), MINI, (1000 * 0.15 + 500 * 0.6) / 1e6),
        # 400 of 1000 prompt tokens read from the cache, at half price
        (Usage(input_tokens=1000, cached_input_tokens=400), MINI, (600 * 0.15 + 400 * 0.075) / 1e6),
        # no cache-write price: writes cost as plain input
        (Usage(input_tokens=1000, cache_write_input_tokens=1000), MINI, 1000 * 0.15 / 1e6),
        # Anthropic: 120 fresh + 1800 read + 30 written, 61 out (tests/wire anthropic payload)
        (
            Usage(input_tokens=1950, cached_input_tokens=1800, cache_write_input_tokens=30, output_tokens=61),
            SONNET,
            (120 * 3.0 + 1800 * 0.3 + 30 * 3.75 + 61 * 15.0) / 1e6,
        ),
        # reasoning tokens are part of the output, not on top of it
        (Usage(output_tokens=100, reasoning_tokens=80), MINI, 100 * 0.6 / 1e6),
        (Usage(input_tokens=5000, output_tokens=5000), FREE, 0.0),
    ],
)
def test_cost(usage: Usage, price: Price, expected: float) -> None:
    assert cost(usage, price) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_a_usage_whose_subsets_exceed_the_input_never_costs_less_than_its_parts() -> None:
    odd = Usage(input_tokens=10, cached_input_tokens=20)  # inconsistent upstream report
    assert cost(odd, MINI) == pytest.approx(20 * 0.075 / 1e6)


@pytest.mark.parametrize(
    ("price", "tokens_in", "tokens_out", "expected"),
    [
        (MINI, 1000, 100, (1000 * 0.15 + 100 * 0.6) / 1e6),
        (FREE, 1000, 100, 0.0),
        (None, 1000, 100, None),
    ],
)
def test_estimated_cost(price: Price | None, tokens_in: int, tokens_out: int, expected: float | None) -> None:
    assert estimated_cost(price, tokens_in, tokens_out) == (
        expected if expected is None else pytest.approx(expected)
    )


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0.00042, "0.00042"),
        (0.0, "0"),
        (1.5, "1.5"),
        (2.0, "2"),
        (1e-12, "0"),
        (0.000123456789, "0.0001234568"),
    ],
)
def test_format_usd(amount: float, text: str) -> None:
    assert format_usd(amount) == text
