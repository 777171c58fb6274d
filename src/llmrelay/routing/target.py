"""A target: one upstream deployment behind an alias, with its own policy stack."""

from __future__ import annotations

from dataclasses import dataclass

from llmrelay.providers import Provider
from llmrelay.service import Service


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    weight: float
    provider: Provider
    service: Service


@dataclass(frozen=True, slots=True)
class Route:
    """What an alias resolves to: its targets and, in order, the aliases to fall back to."""

    alias: str
    targets: tuple[Target, ...]
    fallbacks: tuple[str, ...] = ()
