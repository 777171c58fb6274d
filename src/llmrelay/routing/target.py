"""A target: one upstream deployment behind an alias, with its own policy stack and health."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmrelay.pricing.prices import Price
from llmrelay.providers import Provider
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.strategies import Strategy
from llmrelay.service import Service


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    weight: float
    provider: Provider
    service: Service
    health: TargetHealth
    price: Price | None = None
    """USD per million tokens, resolved once at build time; None: unknown."""
    model: str | None = None
    """A wildcard alias's pass-through target: the model sent upstream, with ``*`` standing for
    what the alias's ``*`` matched (:func:`~llmrelay.routing.patterns.fill`). ``None``: the
    request goes as it is (the provider sends its own configured model)."""


@dataclass(frozen=True, slots=True)
class Route:
    """What an alias resolves to: its targets, how to order them, the aliases to fall back to."""

    alias: str
    targets: tuple[Target, ...]
    fallbacks: tuple[str, ...] = ()
    strategy: Strategy = field(default="weighted")
