"""Config -> providers, target stacks, routes and the request pipeline.

The one module that knows every policy and store: everything else receives what it needs. Policy
order follows docs/architecture.md §4; a new policy is one line here::

    request scope:  (trace_request) -> deadline -> validate_input -> idempotency -> (content_log) -> (router)
    target scope:   retry -> circuit_breaker -> attempt_stats -> (trace_attempt) -> timeout -> provider

``trace_request`` (outermost) and ``trace_attempt`` are there only when tracing is on
(``telemetry.otlp_endpoint``, or a tracer given to ``Relay``); :mod:`llmrelay.telemetry.tracing`
and OpenTelemetry are imported only then.

``metrics`` (:class:`~llmrelay.telemetry.metrics.Metrics`, a no-op unless the server passes its
Prometheus backend) is handed to what counts: the breakers' transitions and the attempt stats.

Each target's price is resolved here, once (``llmrelay.pricing.prices``): the router's ``cheapest``
strategy and the cost of every answer (:meth:`llmrelay.relay.Relay.cost`) read it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import Config, ModelConfig, TargetConfig
from llmrelay.config_checks import PASS_THROUGH_PROVIDERS
from llmrelay.context import Context
from llmrelay.errors import ConfigError
from llmrelay.policies.circuit_breaker import CircuitBreaker
from llmrelay.policies.deadline import Deadline
from llmrelay.policies.idempotency import Idempotency
from llmrelay.policies.retry import Retry
from llmrelay.policies.retry_budget import RetryBudget
from llmrelay.policies.timeout import AttemptTimeout
from llmrelay.policies.validate_input import ValidateInput, load_hook
from llmrelay.pricing.prices import Price, resolve_price
from llmrelay.providers import Provider, create_provider
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.patterns import WILDCARD, is_pattern
from llmrelay.routing.router import Router
from llmrelay.routing.target import Route, Target
from llmrelay.service import Policy, Request, Result, Service, compose
from llmrelay.stores import open_kv
from llmrelay.stores.base import KV
from llmrelay.telemetry.attempts import AttemptStats
from llmrelay.telemetry.content_log import ContentLog
from llmrelay.telemetry.metrics import Metrics
from llmrelay.types import ChatRequest
from llmrelay.wire.foreign_params import honour_or_drop
from llmrelay.wire.upstream_text import Credentials

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


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
    flush: Callable[[], object] | None = None
    """Pushes out buffered spans (the OTLP exporter's); run when the relay closes."""


def build(
    config: Config,
    *,
    clock: Clock,
    rand: Callable[[], float] = random.random,
    metrics: Metrics | None = None,
    tracer: Tracer | None = None,
) -> Pipeline:
    metrics = metrics or Metrics()
    tracing = _tracing(config, tracer)
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
            breaker_label = f"{model.name}:{target.label}"
            breaker = CircuitBreaker(
                model.circuit_breaker,
                clock,
                label=breaker_label,
                on_change=partial(metrics.circuit, breaker_label),
            )
            metrics.circuit(breaker_label, "closed", "closed")
            providers.append(provider)
            breakers.append(breaker)
            observe: list[Policy] = [
                AttemptStats(clock, metrics, label=target.label, provider=target.provider)
            ]
            if tracing is not None:
                observe.append(tracing.attempt(target))
            targets.append(_target(model, target, provider, breaker, observe, clock, rand, template, price))
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
    request_scope: list[Policy] = [
        *([tracing.request()] if tracing is not None else []),
        Deadline(total_for),
        *_input_guards(config, router),
        Idempotency(kv, clock, ttl=config.server.idempotency_ttl, wait=config.server.idempotency_wait),
        *_content_log(config, router),
    ]
    return Pipeline(
        compose(request_scope, router),
        router,
        tuple(providers),
        (kv,),
        tuple(breakers),
        prices,
        total_for,
        flush=tracing.flush if tracing is not None else None,
    )


@dataclass(frozen=True, slots=True)
class _Tracing:
    """The tracing policies' factory, when tracing is on."""

    tracer: Tracer
    capture_content: bool
    flush: Callable[[], object] | None

    def request(self) -> Policy:
        from llmrelay.telemetry.tracing import TraceRequest

        return TraceRequest(self.tracer, capture_content=self.capture_content)

    def attempt(self, target: TargetConfig) -> Policy:
        from llmrelay.telemetry.tracing import TraceAttempt

        return TraceAttempt(
            self.tracer,
            label=target.label,
            provider=target.provider,
            model=target.model,
            capture_content=self.capture_content,
        )


def _tracing(config: Config, tracer: Tracer | None) -> _Tracing | None:
    telemetry = config.telemetry
    if tracer is not None:
        return _Tracing(tracer, telemetry.capture_content, None)
    if telemetry.otlp_endpoint is None:
        return None
    from llmrelay.telemetry.tracing import otlp_tracer

    made, flush = otlp_tracer(telemetry)
    return _Tracing(made, telemetry.capture_content, flush)


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
    return [ValidateInput(guards, hooks, alias_of=router.names.alias)]


def _content_log(config: Config, router: Router) -> list[Policy]:
    """The prompt/answer log, only when some alias has ``log_content`` (off by default)."""
    aliases = {m.name for m in config.models if m.log_content}
    if not aliases:
        return []
    secrets = [config.server.master_key, *(k.key for k in config.keys)]
    for model in config.models:
        for target in model.targets:
            secrets.append(target.api_key)
    values = [s.reveal() for s in secrets if s is not None]
    values += [v for m in config.models for t in m.targets for v in t.headers.values()]
    return [ContentLog(aliases, router.names.alias, Credentials.of(values))]


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
    observe: list[Policy],
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
        *observe,
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
