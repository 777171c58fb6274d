"""A lean ASGI application: exact-path dispatch, lifespan, and the outermost error edge.

Starlette's ``Request``/``Response`` are used as they are; its application, router and middleware
stack are not: profiling the benchmark showed them at ~17% of the gateway's CPU per request, for
features this server does not use. Here a request costs one dict lookup (a short regex list for
the few routes with a path parameter). Unknown paths are 404 and wrong methods 405, in the wire
shape of the caller's route family: Anthropic's for anything under ``/v1/messages``, OpenAI's
elsewhere. ``HEAD`` is answered by every ``GET`` route (uvicorn sends the headers, not the body).
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

from llmrelay.errors import ConfigError, InvalidRequest, NotFound, RelayError
from llmrelay.server.errors import ErrorBody, error_response
from llmrelay.wire import anthropic_errors, openai_errors

log = logging.getLogger("llmrelay.server")

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    """May hold ``{name}`` parameters, matched up to the next ``/``, or a final ``{name:path}``,
    which takes the rest of the path, slashes included (model aliases such as
    ``meta-llama/Llama-3.1-8B``)."""
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
        self.routes = tuple(routes)
        self._lifespan = lifespan
        self._exact: dict[str, dict[str, Endpoint]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = []
        for route in routes:
            if "{" in route.path:
                regex = _compile(route.path)
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
            elif (endpoint := _endpoint(methods, scope["method"])) is None:
                allowed = ", ".join(sorted({*methods, "HEAD"} if "GET" in methods else methods))
                err = InvalidRequest(
                    f"{scope['method']} is not allowed on {path} (allowed: {allowed})",
                    status=405,
                    code="method_not_allowed",
                )
                response = _error(path, err, {"allow": allowed})
            else:
                response = await endpoint(request)
        except RelayError as err:  # a route that let one of ours through still answers its status
            log.info("%s %s answered %d %s at the edge", scope["method"], path, err.status, err.code)
            response = _error(path, err)
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
        except ConfigError as err:  # a key file or command that fails: the message says it all
            log.error("startup failed: %s", err.message)
            await send({"type": "lifespan.startup.failed", "message": str(err)})
            return
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


def _compile(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    pattern = re.sub(r"\{(\w+):path\}$", r"(?P<\1>.+)", pattern)
    return re.compile("^" + pattern + "$")


def _endpoint(methods: dict[str, Endpoint], method: str) -> Endpoint | None:
    endpoint = methods.get(method)
    if endpoint is None and method == "HEAD":
        return methods.get("GET")
    return endpoint


def error_body_for(path: str) -> ErrorBody:
    """The error shape a caller of ``path`` expects (also for paths no route serves)."""
    anthropic = path == "/v1/messages" or path.startswith("/v1/messages/")
    return anthropic_errors.encode_error if anthropic else openai_errors.encode_error


def _error(path: str, err: RelayError, headers: dict[str, str] | None = None) -> Response:
    return error_response(err, error_body_for(path), headers=headers or {})
