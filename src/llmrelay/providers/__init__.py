"""Provider services: thin I/O over the pure codecs in :mod:`llmrelay.wire`.

Each module ``providers/<name>.py`` exposes ``create(target, timeout, clock) -> Provider``; modules
are imported only when a config names them, so unused providers cost nothing at start-up.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import TargetConfig, TimeoutConfig
from llmrelay.context import Context
from llmrelay.errors import ConfigError
from llmrelay.stores.rates import RateLimits
from llmrelay.streams import ChatStream
from llmrelay.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse


class Provider(Protocol):
    """One upstream deployment (a target): knows its credentials, model and HTTP pool."""

    name: str

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def chat(self, request: ChatRequest, ctx: Context) -> ChatResponse | ChatStream: ...

    async def embed(self, request: EmbeddingRequest, ctx: Context) -> EmbeddingResponse: ...

    async def count_tokens(self, request: ChatRequest, ctx: Context) -> int | None:
        """The prompt's input tokens as the provider's own counting endpoint reports them;
        ``None`` when it has none (the caller then estimates: :mod:`llmrelay.token_count`)."""
        ...


class _Factory(Protocol):
    def __call__(
        self, target: TargetConfig, timeout: TimeoutConfig, clock: Clock, *, limits: RateLimits | None = None
    ) -> Provider: ...


def create_provider(
    target: TargetConfig,
    timeout: TimeoutConfig,
    clock: Clock,
    *,
    where: str,
    limits: RateLimits | None = None,
) -> Provider:
    """Build the provider a target names; ``where`` is its config path for error messages;
    ``limits`` the store its keys' own ``rpm``/``tpm`` count in (:mod:`.upstream_limits`)."""
    module = importlib.import_module(f"llmrelay.providers.{target.provider}")
    factory: _Factory = module.create
    try:
        return factory(target, timeout, clock, limits=limits)
    except msgspec.ValidationError as err:
        raise ConfigError(f"invalid options for {target.provider} at `{where}.options`: {err}") from err
