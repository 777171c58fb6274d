"""The cost of a request: pure arithmetic on a :class:`~llmrelay.types.Usage` and a ``Price``.

``Usage.input_tokens`` is the whole prompt; cache reads and cache writes are subsets of it, each at
its own price (a missing one costs as plain input). Reasoning tokens are a subset of the output and
cost as output. Costs are USD floats: a request's cost has no use for more than the ten decimal
places :func:`format_usd` keeps.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmrelay.pricing.prices import Price
from llmrelay.types import Usage

_MILLION = 1_000_000


def cost(usage: Usage, price: Price) -> float:
    """USD for ``usage`` at ``price``."""
    read, written = usage.cached_input_tokens, usage.cache_write_input_tokens
    fresh = max(0, usage.input_tokens - read - written)
    cached_price = price.input if price.cached_input is None else price.cached_input
    write_price = price.input if price.cache_write is None else price.cache_write
    total = (
        fresh * price.input + read * cached_price + written * write_price + usage.output_tokens * price.output
    )
    return total / _MILLION


def cost_at(prices: Mapping[str, Price | None], target: str | None, usage: Usage) -> float | None:
    """USD for ``usage`` at the price of the target labelled ``target``; None when unknown."""
    price = prices.get(target) if target else None
    return None if price is None else cost(usage, price)


def estimated_cost(price: Price | None, input_tokens: int, output_tokens: int) -> float | None:
    """What a call of that size would cost at ``price`` (no cache discount assumed); None: unknown."""
    if price is None:
        return None
    return (input_tokens * price.input + output_tokens * price.output) / _MILLION


def format_usd(amount: float) -> str:
    """Plain decimal, no exponent, trailing zeros dropped: ``0.00042``, ``0``, ``1.5``."""
    text = f"{amount:.10f}".rstrip("0").rstrip(".")
    return text or "0"
