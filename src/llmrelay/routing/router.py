"""The router: sits between the request scope and the target scope of the pipeline.

It resolves the requested name to an alias, once per request (a named alias, else the longest
matching pattern: :mod:`.patterns`), orders its targets by the route's strategy
(:mod:`.strategies`), and tries them in turn while :func:`~llmrelay.classify.classify` says an
error may fail over; then it walks
the alias's ``fallbacks`` the same way (a context-length error thus reaches a larger-context alias).
Caller errors are raised at once. A 429 with ``Retry-After`` cools its target down for that long.
When everything failed, one :class:`AllTargetsFailed` names every target tried (stale-if-error is
the cache policy's, above the router: :mod:`llmrelay.policies.cache`). ``ctx.stats`` records the
targets tried and fallbacks taken for the response headers.

A wildcard alias (``openai/*``) is one route like any other: one stack, breaker and label per
target however many names reach it. Only the model sent upstream differs per name: a
pass-through target gets a copy of the request whose ``model`` is its template filled with what
the ``*`` matched.

On a stream, the router only sees failures before the commit point: a provider returns a stream
after its first chunk, so once one comes back the choice is final.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import msgspec

from llmrelay.classify import classify
from llmrelay.context import Context
from llmrelay.errors import AllTargetsFailed, NotFound, RateLimited, RelayError
from llmrelay.pricing.cost import estimated_cost
from llmrelay.pricing.tokens import estimate_input_tokens, output_bound
from llmrelay.routing.health import TargetHealth
from llmrelay.routing.patterns import ModelNames, fill
from llmrelay.routing.strategies import order_targets
from llmrelay.routing.target import Route, Target
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream, StreamObserver


class Router:
    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._routes = dict(routes)
        self._rand = rand
        self.names = ModelNames(self._routes)

    @property
    def aliases(self) -> list[str]:
        """Every configured name, named aliases and patterns, in config order."""
        return list(self._routes)

    def route(self, name: str) -> tuple[Route, str | None]:
        """The route a requested model name resolves to, and what a pattern's ``*`` matched."""
        found = self.names.resolve(name)
        if found is None:
            available = ", ".join(sorted(self._routes)) or "none configured"
            raise NotFound(
                f"The model `{name}` does not exist. Available models: {available}",
                code="model_not_found",
                param="model",
            )
        return self._routes[found.alias], found.captured

    async def __call__(self, request: Request, ctx: Context) -> Result:
        first, captured = self.route(request.model)
        errors: list[tuple[str, RelayError]] = []
        for n, alias in enumerate((first.alias, *first.fallbacks)):
            if n and ctx.stats is not None:
                ctx.stats.fallbacks += 1
            for target in self._ordered(self._routes[alias], request):
                sent = request
                if captured is not None and target.model is not None:
                    sent = msgspec.structs.replace(request, model=fill(target.model, captured))
                try:
                    result = await self._attempt(target, sent, ctx)
                except RelayError as err:
                    errors.append((target.label, err))
                    if not classify(err).failover:
                        raise
                else:
                    return _answered_by(result, target.label)
        raise errors[0][1] if len(errors) == 1 else AllTargetsFailed(errors)

    async def _attempt(self, target: Target, request: Request, ctx: Context) -> Result:
        if ctx.stats is not None:
            ctx.stats.targets.append(target.label)
        health = target.health
        started = health.started()
        try:
            result = await target.service(request, ctx.replace(target=target.label))
        except BaseException as err:
            if isinstance(err, RateLimited) and err.retry_after is not None:
                health.cool_down(err.retry_after)
            health.finished(started, ok=False)
            raise
        health.answered(started, ok=True)
        if isinstance(result, ChatStream):
            result.observe(_InFlight(health))
        else:
            health.ended()
        return result

    def _ordered(self, route: Route, request: Request) -> list[Target]:
        targets = route.targets
        order = order_targets(
            route.strategy,
            [t.weight for t in targets],
            [t.health for t in targets],
            _costs(route, request),
            self._rand,
        )
        return [targets[i] for i in order]


class _InFlight(StreamObserver):
    """Keeps a streamed answer counted as in flight on its target until the stream ends."""

    def __init__(self, health: TargetHealth) -> None:
        self._health = health

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        self._health.ended()


def _costs(route: Route, request: Request) -> list[float | None]:
    """Each target's estimated cost of ``request``, for ``cheapest`` only (other strategies pay
    nothing). The calibrated token estimate, not a tokenizer: ranking needs magnitudes, and the
    request path must not load tokenizer tables."""
    if route.strategy != "cheapest":
        return [None] * len(route.targets)
    tokens_in, tokens_out = estimate_input_tokens(request), output_bound(request)
    return [estimated_cost(t.price, tokens_in, tokens_out) for t in route.targets]


def _answered_by(result: Result, label: str) -> Result:
    """Stamp the result with the target that produced it (logs, headers, usage attribution)."""
    if isinstance(result, ChatStream):
        result.target = label
        return result
    return msgspec.structs.replace(result, target=label)
