"""Config -> providers, target stacks, routes and the request pipeline.

The one module that knows every policy and store: everything else receives what it needs. Policy
order follows ARCHITECTURE §3 (request scope, router, target scope); a new policy is one line here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from llmrelay.clock import Clock
from llmrelay.config import Config, TargetConfig
from llmrelay.context import Context
from llmrelay.policies.deadline import Deadline
from llmrelay.policies.idempotency import Idempotency
from llmrelay.providers import Provider, create_provider
from llmrelay.routing.router import Router
from llmrelay.routing.target import Route, Target
from llmrelay.service import Policy, Request, Result, Service, compose
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from llmrelay.types import ChatRequest


@dataclass(frozen=True, slots=True)
class Pipeline:
    service: Service
    router: Router
    providers: tuple[Provider, ...]
    stores: tuple[KV, ...]


def build(config: Config, *, clock: Clock, rand: Callable[[], float] = random.random) -> Pipeline:
    providers: list[Provider] = []
    routes: dict[str, Route] = {}
    for i, model in enumerate(config.models):
        targets = []
        for j, target in enumerate(model.targets):
            where = f"$.models[{i}].targets[{j}]"
            provider = create_provider(target, model.timeout, clock, where=where)
            providers.append(provider)
            targets.append(_target(target, provider))
        routes[model.name] = Route(model.name, tuple(targets), tuple(model.fallbacks))
    router = Router(routes, rand=rand)

    def total_for(alias: str) -> float | None:
        model = config.model(alias)
        return model.timeout.total if model else None

    kv = open_kv(config.state.url or "memory://", clock)
    request_scope: list[Policy] = [
        Deadline(total_for),
        Idempotency(kv, clock, ttl=config.server.idempotency_ttl, wait=config.server.idempotency_wait),
    ]
    return Pipeline(compose(request_scope, router), router, tuple(providers), (kv,))


def _target(target: TargetConfig, provider: Provider) -> Target:
    async def call_provider(request: Request, ctx: Context) -> Result:
        if isinstance(request, ChatRequest):
            return await provider.chat(request, ctx)
        return await provider.embed(request, ctx)

    return Target(target.label, target.weight, provider, call_provider)
