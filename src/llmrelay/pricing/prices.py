"""A target's price: the config's override, else the bundled data of ``genai-prices``.

Resolved once per target when the pipeline is built (``llmrelay.builder``), never per request.
``genai-prices`` is a maintained price table (input, cached input, cache write and output per
million tokens, with the date a price took effect) for the common OpenAI, Anthropic and Gemini
models. Only the data bundled in the pinned wheel is read: its remote auto-update
(``genai_prices.UpdatePrices``) is never started, so prices never come from the network and change
only when the pinned version does. It is imported here, lazily: ``import llmrelay`` does not load it.

An unknown model without an override has no price (``None``): its cost is unknown, never a crash
and never a guess. Tiered prices (Gemini Pro and Claude Sonnet above 200K prompt tokens) resolve
to their base tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from llmrelay.config import PriceConfig


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. ``cached_input`` / ``cache_write`` of ``None`` cost as ``input``."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    source: str = "config"
    """Where it came from: ``config``, or ``genai-prices <version>``."""
    since: date | None = None
    """When the price took effect, when the data says."""


PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}
"""llmrelay provider name -> genai-prices provider id (``mock`` has no price data)."""


def resolve_price(provider: str, model: str | None, override: PriceConfig | None) -> Price | None:
    """The override when given (self-hosted models set zeros), else the package's price, else None."""
    if override is not None:
        return Price(
            input=override.input,
            output=override.output,
            cached_input=override.cached_input,
            cache_write=override.cache_write,
        )
    provider_id = PROVIDER_IDS.get(provider)
    if provider_id is None or not model:
        return None
    return package_price(provider_id, model)


def package_price(provider_id: str, model: str, *, at: datetime | None = None) -> Price | None:
    """The bundled price of ``model`` at ``provider_id`` in force at ``at`` (default: now)."""
    from genai_prices import __version__
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    # A snapshot of the bundled data only: genai_prices.get_snapshot() would return whatever an
    # auto-update in the same process last fetched.
    snapshot = DataSnapshot(providers=providers, from_auto_update=False)
    try:
        _, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    when = at or datetime.now(tz=UTC)
    prices = info.get_prices(when)
    per_input, per_output = _per_million(prices, "input_mtok"), _per_million(prices, "output_mtok")
    if per_input is None or per_output is None:
        return None
    return Price(
        input=per_input,
        output=per_output,
        cached_input=_per_million(prices, "cache_read_mtok"),
        cache_write=_per_million(prices, "cache_write_mtok"),
        source=f"genai-prices {__version__}",
        since=_since(info.prices, when),
    )


def _per_million(prices: object, key: str) -> float | None:
    value: Any = getattr(prices, key, None)
    if value is None:
        return None
    if not isinstance(value, Decimal):
        value = value.base  # TieredPrices: the price below the first threshold
    return float(value)


def _since(prices: object, when: datetime) -> date | None:
    """The start date of the conditional price in force (the data has none for a single price)."""
    if not isinstance(prices, list):
        return None
    for conditional in reversed(prices):
        constraint = conditional.constraint
        if constraint is None or constraint.active(when):
            start: date | None = getattr(constraint, "start_date", None)
            return start
    return None
