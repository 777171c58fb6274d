"""Price resolution: the override beats the package; an unknown model has no price."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmrelay.config import PriceConfig
from llmrelay.pricing.prices import Price, package_price, resolve_price

OVERRIDE = PriceConfig(input=0.1, output=0.2, cached_input=0.05, cache_write=0.125)


@pytest.mark.parametrize(
    ("provider", "model", "override", "expected"),
    [
        # override beats the package, for a model the package knows
        (
            "openai",
            "gpt-4o-mini",
            OVERRIDE,
            Price(input=0.1, output=0.2, cached_input=0.05, cache_write=0.125),
        ),
        # a self-hosted model at zero
        ("openai", "my-llama", PriceConfig(input=0, output=0), Price(input=0.0, output=0.0)),
        ("mock", "mock", PriceConfig(input=1, output=2), Price(input=1.0, output=2.0)),
        # unknown model, provider without price data, no model: no price
        ("openai", "my-llama", None, None),
        ("mock", "mock", None, None),
        ("gemini", None, None, None),
    ],
)
def test_resolve_price(
    provider: str, model: str | None, override: PriceConfig | None, expected: Price | None
) -> None:
    assert resolve_price(provider, model, override) == expected


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash")],
)
def test_the_package_prices_the_common_models(provider: str, model: str) -> None:
    price = resolve_price(provider, model, None)
    assert price is not None
    assert price.source.startswith("genai-prices ")
    assert 0 < price.input < price.output
    assert price.cached_input is not None
    assert price.cached_input < price.input


def test_package_prices_are_the_published_ones() -> None:
    # Published list prices (USD / million tokens); a data update that changes them fails here.
    mini = package_price("openai", "gpt-4o-mini", at=datetime(2026, 1, 1, tzinfo=UTC))
    assert mini is not None
    assert (mini.input, mini.output, mini.cached_input) == (0.15, 0.6, 0.075)
    haiku = package_price("anthropic", "claude-haiku-4-5-20251001", at=datetime(2026, 1, 1, tzinfo=UTC))
    assert haiku is not None
    assert (haiku.input, haiku.output, haiku.cached_input, haiku.cache_write) == (1.0, 5.0, 0.1, 1.25)


def test_importing_llmrelay_loads_neither_package() -> None:
    import subprocess
    import sys

    code = "import sys, llmrelay, llmrelay.pricing.cost, llmrelay.pricing.tokens, llmrelay.builder; " + (
        "print([m for m in sys.modules if 'genai' in m or 'bpe' in m])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
