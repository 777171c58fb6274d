"""The router: sits between the request scope and the target scope of the pipeline.

It resolves the alias, orders its targets by weight, and tries them in turn while
:func:`~llmrelay.classify.classify` says an error may fail over; then it walks the alias's
``fallbacks`` the same way. Errors that must not fail over (the caller's own mistakes) are raised
at once. When everything failed, one :class:`AllTargetsFailed` names what was tried.

On a stream, the router only ever sees failures before the commit point: a provider returns a
stream after its first chunk, so once one comes back the choice is final.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import msgspec

from llmrelay.classify import classify
from llmrelay.context import Context
from llmrelay.errors import AllTargetsFailed, NotFound, RelayError
from llmrelay.routing.target import Route, Target
from llmrelay.routing.weights import weighted_order
from llmrelay.service import Request, Result
from llmrelay.streams import ChatStream


class Router:
    def __init__(self, routes: Mapping[str, Route], *, rand: Callable[[], float] = random.random) -> None:
        self._routes = dict(routes)
        self._rand = rand

    @property
    def aliases(self) -> list[str]:
        return list(self._routes)

    def route(self, alias: str) -> Route:
        route = self._routes.get(alias)
        if route is None:
            available = ", ".join(sorted(self._routes)) or "none configured"
            raise NotFound(
                f"The model `{alias}` does not exist. Available models: {available}",
                code="model_not_found",
                param="model",
            )
        return route

    async def __call__(self, request: Request, ctx: Context) -> Result:
        first = self.route(request.model)
        errors: list[tuple[str, RelayError]] = []
        for alias in (first.alias, *first.fallbacks):
            for target in self._ordered(self._routes[alias]):
                try:
                    result = await target.service(request, ctx.replace(target=target.label))
                except RelayError as err:
                    errors.append((target.label, err))
                    if not classify(err).failover:
                        raise
                else:
                    return _answered_by(result, target.label)
        if len(errors) == 1:
            raise errors[0][1]
        raise AllTargetsFailed(errors)

    def _ordered(self, route: Route) -> list[Target]:
        order = weighted_order([t.weight for t in route.targets], self._rand)
        return [route.targets[i] for i in order]


def _answered_by(result: Result, label: str) -> Result:
    """Stamp the result with the target that produced it (logs, headers, usage attribution)."""
    if isinstance(result, ChatStream):
        result.target = label
        return result
    return msgspec.structs.replace(result, target=label)
