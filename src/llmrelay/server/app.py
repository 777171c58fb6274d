"""``create_app(relay)``: the ASGI application, built from a relay and nothing global.

The lifespan opens the relay (provider connection pools) and the key store, and closes them on
shutdown after uvicorn has drained in-flight requests and streams. Routes only decode, call the
pipeline and encode (see :mod:`llmrelay.server.handler`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmrelay.errors import InvalidRequest, NotFound, RelayError
from llmrelay.keys import KeyService
from llmrelay.relay import Relay
from llmrelay.server.access_log import AccessLog
from llmrelay.server.auth import Authenticator
from llmrelay.server.errors import error_response
from llmrelay.server.handler import ServerState
from llmrelay.server.routes import admin, anthropic, health, models, openai
from llmrelay.wire import anthropic_errors, openai_errors


def create_app(
    relay: Relay, *, keys: KeyService | None = None, access_log: AccessLog | None = None
) -> Starlette:
    config = relay.config
    key_service = keys or KeyService.for_config(config, clock=relay.clock)
    state = ServerState(
        relay=relay,
        config=config,
        auth=Authenticator(key_service, master_key=config.server.master_key, required=config.auth_required),
        access_log=access_log or AccessLog(),
        keys=key_service,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with relay:
            await key_service.open()
            try:
                yield
            finally:
                await key_service.aclose()

    routes = [
        Route("/v1/chat/completions", openai.chat_completions, methods=["POST"]),
        Route("/v1/embeddings", openai.embeddings, methods=["POST"]),
        Route("/v1/messages", anthropic.messages, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", models.get_model, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        *admin.routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.llmrelay = state
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the wire shape the caller's route family uses."""
    assert isinstance(exc, HTTPException)
    err: RelayError
    if exc.status_code == 404:
        err = NotFound(f"no route for {request.method} {request.url.path}", code="unknown_url")
    else:
        err = InvalidRequest(
            f"{request.method} is not allowed on {request.url.path}",
            status=exc.status_code,
            code="method_not_allowed",
        )
    body = anthropic_errors.encode_error if request.url.path == "/v1/messages" else openai_errors.encode_error
    return error_response(err, body, headers=dict(exc.headers or {}))
