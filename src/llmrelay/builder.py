"""Config -> providers, target stacks, routes and the request pipeline.

The one module that knows every policy and store: everything else receives what it needs. Policy
order follows docs/architecture.md §4; a new policy is one line here::

    request scope:  (trace_request) -> deadline -> validate_input -> redact_pii -> moderate_output
                    -> idempotency
                    -> (content_log) -> request_limit -> cache -> token_limit -> budget
                    -> hold_for_targets -> (router)
    target scope:   retry -> validate_output -> circuit_breaker -> rate_limit -> attempt_stats
                    -> (trace_attempt) -> timeout -> provider

Limits (tiers) count in one :class:`~llmrelay.stores.rates.RateLimits` store: memory, or Redis
when ``state.redis`` is set. Without tiers the limit policies are not built at all.

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

from llmrelay.alias_policies import cache_policy, content_log, input_guards, moderation, pii_redaction
from llmrelay.budgets.store import open_budget_store
from llmrelay.clock import Clock
from llmrelay.config import Config, ModelConfig, TargetConfig
from llmrelay.config_checks import PASS_THROUGH_PROVIDERS
from llmrelay.context import Context
from llmrelay.errors import ConfigError
from llmrelay.json_schemas import SchemaCache
from llmrelay.policies.budget import Budget
from llmrelay.policies.cache import Cache
from llmrelay.policies.circuit_breaker import CircuitBreaker
from llmrelay.policies.deadline import Deadline
from llmrelay.policies.idempotency import Idempotency
from llmrelay.policies.rate_limit import HoldForTargets, TargetLimit
from llmrelay.policies.request_limit import RequestLimit
from llmrelay.policies.retry import Retry
from llmrelay.policies.retry_budget import RetryBudget
from llmrelay.policies.tenants import Tenancy
from llmrelay.policies.timeout import AttemptTimeout
from llmrelay.policies.token_limit import TokenLimit
from llmrelay.policies.validate_output import ValidateOutput
from llmrelay.pricing.prices import Price, resolve_price
from llmrelay.providers import Provider, create_provider
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.patterns import WILDCARD, is_pattern
from llmrelay.routing.router import Router
from llmrelay.routing.target import Route, Target
from llmrelay.service import Policy, Request, Result, Service, compose
from llmrelay.stores import open_rate_limits, open_state_kv
from llmrelay.stores.base import KV, Resource
from llmrelay.stores.rates import RateLimits
from llmrelay.telemetry.attempts import AttemptStats
from llmrelay.telemetry.metrics import Metrics
from llmrelay.types import ChatRequest
from llmrelay.wire.foreign_params import honour_or_drop

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from llmrelay.telemetry.log_export import LogExport


@dataclass(frozen=True, slots=True)
class Pipeline:
    service: Service
    router: Router
    providers: tuple[Provider, ...]
    stores: tuple[Resource, ...]
    responses: KV
    """The ``responses`` namespace: stored ``/v1/responses`` answers and their conversations."""
    breakers: tuple[CircuitBreaker, ...]
    limits: RateLimits | None
    """The rate-limit store, when anything is limited (opened and closed with the stores)."""
    tenancy: Tenancy | None
    """The tiers as requests resolve them (``/v1/key/info``), when tiers are configured."""
    prices: Mapping[str, Price | None]
    """Target label -> price, resolved once here: nothing looks prices up per request."""
    total_for: Callable[[str], float | None]
    """A requested model name -> its alias's ``timeout.total`` (``None``: no limit or unknown)."""
    budget: Budget | None = None
    """The budget policy when ``budgets`` are configured (its ``status`` serves ``/v1/key/info``)."""
    flush: Callable[[], object] | None = None
    """Pushes out buffered spans (the OTLP exporter's); run when the relay closes."""
    logs: LogExport | None = None
    """The OTLP log export of the access and content logs (with tracing from config)."""
    cache: Cache | None = None
    """The cache policy when some alias caches (its stats and clear serve ``/admin/cache``)."""


def build(
    config: Config,
    *,
    clock: Clock,
    rand: Callable[[], float] = random.random,
    hold_until_deadline: bool = True,
    metrics: Metrics | None = None,
    tracer: Tracer | None = None,
) -> Pipeline:
    """``hold_until_deadline``: when every target is at its own rate limit, wait for one until
    the deadline (the SDK queues calls) instead of at most the alias's ``upstream_hold`` (the
    server, which answers 429 rather than hold a connection long)."""
    limits = open_rate_limits(config.state.redis, clock) if config.has_limits else None
    metrics = metrics or Metrics()
    tracing = _tracing(config, tracer)
    providers: list[Provider] = []
    breakers: list[CircuitBreaker] = []
    routes: dict[str, Route] = {}
    prices: dict[str, Price | None] = {}
    alias_prices: dict[str, tuple[Price, ...]] = {}
    schemas = SchemaCache()  # compiled answer checks, shared by every target's validate_output
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
            provider = create_provider(built, model.timeout, clock, where=where, limits=limits)
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
            targets.append(
                _target(
                    model, target, provider, breaker, observe, clock, rand, template, price, limits, schemas
                )
            )
        routes[model.name] = Route(model.name, tuple(targets), tuple(model.fallbacks), model.strategy)
        alias_prices[model.name] = tuple(t.price for t in targets if t.price is not None)
    router = Router(routes, rand=rand)
    totals = {model.name: model.timeout.total for model in config.models}

    def total_for(name: str) -> float | None:
        found = router.names.resolve(name)
        return totals[found.alias] if found is not None else None

    # Idempotency has a namespace of its own, so no other user of state can evict its records;
    # at the cap the least recently used completed records go first, in-flight claims never.
    # With state.redis every replica shares them (open_state_kv says where they live).
    kv = open_state_kv(config.state, clock, namespace="idem", max_entries=100_000, max_bytes=256 * 2**20)
    # Stored Responses API conversations: a namespace of their own, so neither evicts the other.
    responses = open_state_kv(
        config.state, clock, namespace="responses", max_entries=100_000, max_bytes=256 * 2**20
    )
    tenancy = _tenancy(config, router) if config.tiers else None
    stores: list[Resource] = [kv, responses]
    request_scope: list[Policy] = [
        *([tracing.request()] if tracing is not None else []),
        Deadline(total_for),
        *input_guards(config, router),
        *pii_redaction(config, router),
        *moderation(config, router),
        Idempotency(kv, clock, ttl=config.server.idempotency_ttl, wait=config.server.idempotency_wait),
        *content_log(config, router),
    ]
    # A cache hit counts as a request but takes no tokens and no budget. An alias without a
    # cache has its tokens taken with its request (one store call); TokenLimit serves the others.
    cache = cache_policy(config, router, clock, prices, keep=stores.append)
    cached = cache.covers if cache is not None else _never
    if tenancy is not None and limits is not None:
        request_scope.append(RequestLimit(tenancy, limits, cached=cached))
    if cache is not None:
        request_scope.append(cache)
        if tenancy is not None and limits is not None:
            request_scope.append(TokenLimit(tenancy, limits, cached=cached))
    budget = None
    if config.budgets:

        def prices_of(name: str) -> tuple[Price, ...]:
            found = router.names.resolve(name)
            return alias_prices.get(found.alias, ()) if found is not None else ()

        budget = Budget(
            config.budgets,
            open_budget_store(config.state.url or "memory://"),
            clock,
            prices=prices,
            alias_prices=prices_of,
            metrics=metrics,
        )
        stores.append(budget.store)
        request_scope.append(budget)  # after token limits: spend is reserved once tokens are
    if any(t.rpm or t.tpm or t.limits_keys for m in config.models for t in m.targets):
        holds = {m.name: None if hold_until_deadline else m.upstream_hold for m in config.models}

        def hold_for(name: str) -> float | None:
            found = router.names.resolve(name)
            return holds[found.alias] if found is not None else 0.0

        request_scope.append(HoldForTargets(hold_for))  # innermost: it waits on the targets' limits
    return Pipeline(
        service=compose(request_scope, router),
        router=router,
        providers=tuple(providers),
        stores=tuple(stores),
        responses=responses,
        breakers=tuple(breakers),
        limits=limits,
        tenancy=tenancy,
        prices=prices,
        total_for=total_for,
        budget=budget,
        flush=tracing.flush if tracing is not None else None,
        logs=tracing.logs if tracing is not None else None,
        cache=cache,
    )


def _never(model: str) -> bool:
    return False


def _tenancy(config: Config, router: Router) -> Tenancy:
    trusted = {m.name for m in config.models if m.trust_user}

    def alias_of(name: str) -> str | None:
        found = router.names.resolve(name)
        return found.alias if found is not None else None

    def trusts_user(name: str) -> bool:
        return bool(trusted) and alias_of(name) in trusted

    return Tenancy(config.tiers, alias_of=alias_of, trusts_user=trusts_user)


@dataclass(frozen=True, slots=True)
class _Tracing:
    """The tracing policies' factory, when tracing is on."""

    tracer: Tracer
    capture_content: bool
    flush: Callable[[], object] | None
    logs: LogExport | None = None

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
    from llmrelay.telemetry.log_export import otlp_logs
    from llmrelay.telemetry.tracing import otlp_tracer

    made, flush = otlp_tracer(telemetry)
    return _Tracing(made, telemetry.capture_content, flush, otlp_logs(telemetry))


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
    limits: RateLimits | None,
    schemas: SchemaCache,
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
    checks: list[Policy] = []
    if model.validate_output is not None:
        checks.append(ValidateOutput(model.validate_output, schemas, label=label))
    target_scope: list[Policy] = [
        Retry(model.retry, clock, budget=budget, label=label, rand=rand),
        *checks,
        breaker,
        *(
            [TargetLimit(limits, label=label, rpm=target.rpm, tpm=target.tpm)]
            if limits is not None and (target.rpm or target.tpm)
            else []
        ),
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
