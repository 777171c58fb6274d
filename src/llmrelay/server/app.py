"""``create_app(relay)``: the ASGI application, built from a relay and nothing global.

The lifespan opens the relay (provider connection pools) and the key store (with the audit log,
where a config that differs from the last one seen is recorded), and closes them on shutdown
after uvicorn has drained in-flight requests and streams. Routes only decode, call the
pipeline and encode (see :mod:`llmrelay.server.handler`).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from types import SimpleNamespace

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from llmrelay.audit import record_config
from llmrelay.config import CorsConfig
from llmrelay.keys import KeyService
from llmrelay.relay import Relay
from llmrelay.server import openapi
from llmrelay.server.access_log import AccessLog
from llmrelay.server.asgi import App, Route
from llmrelay.server.auth import Authenticator
from llmrelay.server.handler import ServerState
from llmrelay.server.jwt_auth import JwtVerifier
from llmrelay.server.routes import admin, anthropic, health, metrics, models, openai


def create_app(
    relay: Relay, *, keys: KeyService | None = None, access_log: AccessLog | None = None
) -> ASGIApp:
    config = relay.config
    key_service = keys or KeyService.for_config(config, clock=relay.clock)
    jwt = JwtVerifier(config.server.jwt) if config.server.jwt is not None else None
    state = ServerState(
        relay=relay,
        config=config,
        auth=Authenticator(
            key_service, master_key=config.server.master_key, required=config.auth_required, jwt=jwt
        ),
        access_log=access_log or AccessLog(),
        keys=key_service,
        metrics=metrics.registry_for(relay),
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with relay:
            if jwt is not None:
                await jwt.load()
            await key_service.open()
            await record_config(key_service.audit, config, at=relay.clock.wall())
            # Everything built so far (config, price data, codecs, pools) lives as long as the
            # process: out of the collector's sight, full collections stop walking it every time.
            gc.freeze()
            try:
                yield
            finally:
                await key_service.aclose()

    routes = [
        Route("POST", "/v1/chat/completions", openai.chat_completions),
        Route("POST", "/v1/embeddings", openai.embeddings),
        Route("POST", "/v1/messages", anthropic.messages),
        Route("GET", "/v1/models", models.list_models),
        Route("GET", "/v1/models/{model:path}", models.get_model),
        Route("GET", "/healthz", health.healthz),
        Route("GET", "/readyz", health.readyz),
        Route("GET", "/metrics", metrics.metrics),
        *admin.routes(),
    ]
    routes.append(openapi.route(routes, version=_version()))
    app = App(routes, state=SimpleNamespace(llmrelay=state), lifespan=lifespan)
    return with_cors(app, config.server.cors)


def _version() -> str:
    try:
        return metadata.version("llmrelay")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def with_cors(app: ASGIApp, cors: CorsConfig | None) -> ASGIApp:
    """Browsers may call from the configured origins only; without ``server.cors`` no CORS header
    is ever sent, so a browser on another origin cannot read an answer (the safe default)."""
    if cors is None:
        return app
    return CORSMiddleware(
        app,
        allow_origins=cors.origins,
        allow_methods=cors.methods,
        allow_headers=cors.headers,
        allow_credentials=False,
        max_age=cors.max_age,
    )
