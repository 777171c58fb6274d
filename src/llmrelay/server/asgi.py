"""A lean ASGI application: exact-path dispatch, lifespan, and the outermost error edge.

Starlette's ``Request``/``Response`` are used as they are; its application, router and middleware
stack are not: profiling the benchmark showed them at ~17% of the gateway's CPU per request, for
features this server does not use. Here a request costs one dict lookup (a short regex list for
the few routes with a path parameter). Unknown paths are 404 and wrong methods 405, in the wire
shape of the caller's route family.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llmrelay.errors import InvalidRequest, NotFound, RelayError
from llmrelay.server.errors import ErrorBody, error_response
from llmrelay.wire import anthropic_errors, openai_errors

log = logging.getLogger("llmrelay.server")

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # may hold one or more ``{name}`` parameters, matched up to the next ``/``
    endpoint: Endpoint


class App:
    def __init__(
        self,
        routes: list[Route],
        *,
        state: Any,
        lifespan: Callable[[], AbstractAsyncContextManager[None]],
    ) -> None:
        self.state = state
        self._lifespan = lifespan
        self._exact: dict[str, dict[str, Endpoint]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = []
        for route in routes:
            if "{" in route.path:
                regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.path) + "$")
                methods = next((m for p, m in self._patterns if p.pattern == regex.pattern), None)
                if methods is None:
                    methods = {}
                    self._patterns.append((regex, methods))
                methods[route.method] = route.endpoint
            else:
                self._exact.setdefault(route.path, {})[route.method] = route.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._run_lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        methods = self._exact.get(path)
        if methods is None:
            for regex, candidates in self._patterns:
                match = regex.match(path)
                if match:
                    scope["path_params"] = match.groupdict()
                    methods = candidates
                    break
        scope["app"] = self
        request = Request(scope, receive)
        try:
            if methods is None:
                response = _error(
                    path, NotFound(f"no route for {scope['method']} {path}", code="unknown_url")
                )
            elif (endpoint := methods.get(scope["method"])) is None:
                allowed = ", ".join(sorted(methods))
                err = InvalidRequest(
                    f"{scope['method']} is not allowed on {path} (allowed: {allowed})",
                    status=405,
                    code="method_not_allowed",
                )
                response = _error(path, err, {"allow": allowed})
            else:
                response = await endpoint(request)
        except Exception:  # the outermost edge: log, answer 500, keep serving
            log.exception("unhandled error on %s %s", scope["method"], path)
            response = _error(path, RelayError("internal error in llmrelay"))
        await response(scope, receive, send)

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        context = self._lifespan()
        try:
            await context.__aenter__()
        except Exception as err:
            log.exception("startup failed")
            await send({"type": "lifespan.startup.failed", "message": str(err)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        try:
            await context.__aexit__(None, None, None)
        except Exception as err:
            log.exception("shutdown failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(err)})
            return
        await send({"type": "lifespan.shutdown.complete"})


def _error(path: str, err: RelayError, headers: dict[str, str] | None = None) -> Response:
    body: ErrorBody = anthropic_errors.encode_error if path == "/v1/messages" else openai_errors.encode_error
    return error_response(err, body, headers=headers or {})
