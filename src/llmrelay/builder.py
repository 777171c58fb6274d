"""Config -> providers, target stacks, routes and the request pipeline.

The one module that knows every policy and store: everything else receives what it needs. Policy
order follows docs/architecture.md §4; a new policy is one line here::

    request scope:  deadline -> validate_input -> idempotency -> cache -> (router)
    target scope:   retry -> circuit_breaker -> timeout -> provider

Each target's price is resolved here, once (``llmrelay.pricing.prices``): the router's ``cheapest``
strategy and the cost of every answer (:meth:`llmrelay.relay.Relay.cost`) read it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import cast

import msgspec

from llmrelay.cache.embedder import Embedder, MiniLM
from llmrelay.cache.semantic import Semantic
from llmrelay.cache.settings import SemanticConfig
from llmrelay.cache.verify import CHECKS, Check, Verifier
from llmrelay.clock import Clock
from llmrelay.config import Config, ModelConfig, TargetConfig
from llmrelay.config_checks import PASS_THROUGH_PROVIDERS
from llmrelay.context import Context
from llmrelay.errors import ConfigError
from llmrelay.policies.cache import AliasCache, Cache
from llmrelay.policies.circuit_breaker import CircuitBreaker
from llmrelay.policies.deadline import Deadline
from llmrelay.policies.idempotency import Idempotency
from llmrelay.policies.retry import Retry
from llmrelay.policies.retry_budget import RetryBudget
from llmrelay.policies.timeout import AttemptTimeout
from llmrelay.policies.validate_input import ValidateInput, load_hook
from llmrelay.pricing.cost import cost_at
from llmrelay.pricing.prices import Price, resolve_price
from llmrelay.providers import Provider, create_provider
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.patterns import WILDCARD, is_pattern
from llmrelay.routing.router import Router
from llmrelay.routing.target import Route, Target
from llmrelay.service import Policy, Request, Result, Service, compose
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from llmrelay.types import ChatRequest
from llmrelay.wire.foreign_params import honour_or_drop


@dataclass(frozen=True, slots=True)
class Pipeline:
    service: Service
    router: Router
    providers: tuple[Provider, ...]
    stores: tuple[KV, ...]
    breakers: tuple[CircuitBreaker, ...]
    prices: Mapping[str, Price | None]
    """Target label -> price, resolved once here: nothing looks prices up per request."""
    total_for: Callable[[str], float | None]
    """A requested model name -> its alias's ``timeout.total`` (``None``: no limit or unknown)."""


def build(config: Config, *, clock: Clock, rand: Callable[[], float] = random.random) -> Pipeline:
    providers: list[Provider] = []
    breakers: list[CircuitBreaker] = []
    routes: dict[str, Route] = {}
    prices: dict[str, Price | None] = {}
    for i, model in enumerate(config.models):
        targets = []
        for j, target in enumerate(model.targets):
            where = f"$.models[{i}].targets[{j}]"
            price = resolve_price(target.provider, target.model, target.price)
            if prices.setdefault(target.label, price) != price:
                # The server prices an answer by the label of the target that gave it.
                raise ConfigError(
                    f"target {target.label!r} at `{where}` has another price than a target of the same"
                    " label: give one of them a distinct `name`"
                )
            # A pattern's pass-through target: built without a model, the router sends one per name.
            template = _pass_through(model, target)
            built = target if template is None else msgspec.structs.replace(target, model=None)
            provider = create_provider(built, model.timeout, clock, where=where)
            breaker = CircuitBreaker(model.circuit_breaker, clock, label=f"{model.name}:{target.label}")
            providers.append(provider)
            breakers.append(breaker)
            targets.append(_target(model, target, provider, breaker, clock, rand, template, price))
        routes[model.name] = Route(model.name, tuple(targets), tuple(model.fallbacks), model.strategy)
    router = Router(routes, rand=rand)
    totals = {model.name: model.timeout.total for model in config.models}

    def total_for(name: str) -> float | None:
        found = router.names.resolve(name)
        return totals[found.alias] if found is not None else None

    # Idempotency has a namespace of its own, so no other user of state can evict its records;
    # at the cap the least recently used completed records go first, in-flight claims never.
    kv = open_kv(
        config.state.url or "memory://", clock, namespace="idem", max_entries=100_000, max_bytes=256 * 2**20
    )
    stores: list[KV] = [kv]
    request_scope: list[Policy] = [
        Deadline(total_for),
        *_input_guards(config, router),
        Idempotency(kv, clock, ttl=config.server.idempotency_ttl, wait=config.server.idempotency_wait),
        *_cache(config, router, clock, prices, stores),
    ]
    return Pipeline(
        compose(request_scope, router),
        router,
        tuple(providers),
        tuple(stores),
        tuple(breakers),
        prices,
        total_for,
    )


def _input_guards(config: Config, router: Router) -> list[Policy]:
    """The ``validate_input`` policy, only when some alias has guards (others then cost a lookup)."""
    guards = {m.name: m.guards for m in config.models if m.guards is not None}
    if not guards:
        return []
    hooks = {
        m.name: load_hook(m.guards.hook, where=f"$.models[{i}].guards.hook")
        for i, m in enumerate(config.models)
        if m.guards is not None and m.guards.hook is not None
    }

    def alias_of(name: str) -> str | None:
        found = router.names.resolve(name)
        return found.alias if found is not None else None

    return [ValidateInput(guards, hooks, alias_of=alias_of)]


def _cache(
    config: Config, router: Router, clock: Clock, prices: Mapping[str, Price | None], stores: list[KV]
) -> list[Policy]:
    """The ``cache`` policy and its store, only when some alias caches (others then cost a lookup).

    Its own namespace, so cache churn never evicts idempotency records; in memory unless
    ``state.cache.url`` names a shared store."""
    caching = [(i, m.name, m.cache) for i, m in enumerate(config.models) if m.cache is not None]
    if not caching:
        return []
    store = config.state.cache
    kv = open_kv(
        store.url or "memory://",
        clock,
        namespace=store.namespace,
        max_entries=store.max_entries,
        max_bytes=store.max_bytes,
    )
    stores.append(kv)
    embedder: Embedder | None = None
    settings: dict[str, AliasCache] = {}
    for i, name, cache in caching:
        semantic = None
        if cache.semantic is not None:
            where = f"$.models[{i}].cache.semantic"
            embedder = embedder or MiniLM(where=where)
            semantic = Semantic(cache.semantic, embedder, _verifier(cache.semantic, where), clock)
        settings[name] = AliasCache(cache, semantic)

    def settings_for(name: str) -> AliasCache | None:
        found = router.names.resolve(name)
        return settings.get(found.alias) if found is not None else None

    return [Cache(kv, clock, settings_for=settings_for, cost=partial(cost_at, prices))]


def _verifier(config: SemanticConfig, where: str) -> Verifier:
    checks: list[Check] = [CHECKS[name] for name in config.checks]
    if config.hook is not None:
        checks.append(cast(Check, load_hook(config.hook, where=f"{where}.hook")))
    return Verifier(checks)


def _pass_through(model: ModelConfig, target: TargetConfig) -> str | None:
    """The model template of a wildcard alias's target that sends the matched name (no model, or
    one with ``*``); ``None`` for every other target, which sends its own model."""
    if not is_pattern(model.name) or target.provider not in PASS_THROUGH_PROVIDERS:
        return None
    if target.model is None:
        return WILDCARD
    return target.model if WILDCARD in target.model else None


def _target(
    model: ModelConfig,
    target: TargetConfig,
    provider: Provider,
    breaker: CircuitBreaker,
    clock: Clock,
    rand: Callable[[], float],
    template: str | None,
    price: Price | None,
) -> Target:
    async def call_provider(request: Request, ctx: Context) -> Result:
        # Per attempt: a fallback may move the request to a provider of another format.
        request = honour_or_drop(
            request, target.provider, drop_params=model.drop_params, alias=model.name, target=target.label
        )
        if isinstance(request, ChatRequest):
            return await provider.chat(request, ctx)
        return await provider.embed(request, ctx)

    label = target.label
    budget = RetryBudget(
        clock, ratio=model.retry.budget_ratio, min_per_second=model.retry.budget_min_per_second
    )
    target_scope: list[Policy] = [
        Retry(model.retry, clock, budget=budget, label=label, rand=rand),
        breaker,
        AttemptTimeout(clock, first_token=model.timeout.first_token, idle=model.timeout.idle, label=label),
    ]
    return Target(
        label=label,
        weight=target.weight,
        provider=provider,
        service=compose(target_scope, call_provider),
        health=TargetHealth(clock),
        price=price,
        model=template,
    )
