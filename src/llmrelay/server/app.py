"""``create_app(relay)``: the ASGI application, built from a relay and nothing global.

The lifespan opens the relay (provider connection pools), the key store (with the audit log,
where a config that differs from the last one seen is recorded) and the ledger writer, starts the
alert evaluator (``alerts:``) and the dashboard's sessions and metric sampler (``/ui``, with a
master key), and closes them on shutdown after uvicorn has drained in-flight requests and streams
(the ledger writes what it still buffers then). Routes only decode, call the pipeline and encode
(see :mod:`llmrelay.server.handler`); ``/metrics`` shows the relay's Prometheus backend when it
has one (:func:`llmrelay.server.run.server_relay`).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import metadata
from types import SimpleNamespace
from typing import TYPE_CHECKING

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from llmrelay.audit import record_config
from llmrelay.clock import Clock
from llmrelay.config import Config, CorsConfig
from llmrelay.keys import KeyService
from llmrelay.ledger import LedgerWriter, open_ledger
from llmrelay.relay import Relay
from llmrelay.server import openapi
from llmrelay.server.access_log import AccessLog
from llmrelay.server.asgi import App, Route
from llmrelay.server.auth import Authenticator
from llmrelay.server.handler import ServerState
from llmrelay.server.jwt_auth import JwtVerifier
from llmrelay.server.response_store import ResponseStore
from llmrelay.server.routes import (
    admin,
    anthropic,
    health,
    key_info,
    metrics,
    models,
    openai,
    responses,
    tokens,
    usage,
)
from llmrelay.server.ui import routes as ui_routes
from llmrelay.server.ui.history import History, Recent
from llmrelay.server.ui.routes import Dashboard
from llmrelay.server.ui.sessions import Sessions
from llmrelay.stores import open_state_kv
from llmrelay.telemetry.prometheus import PrometheusMetrics

if TYPE_CHECKING:
    from llmrelay.alerts.evaluator import Evaluator


def create_app(
    relay: Relay, *, keys: KeyService | None = None, access_log: AccessLog | None = None
) -> ASGIApp:
    config = relay.config
    key_service = keys or KeyService.for_config(config, clock=relay.clock)
    jwt = JwtVerifier(config.server.jwt) if config.server.jwt is not None else None
    ledger = _ledger(config, relay.clock)
    prometheus = relay.metrics if isinstance(relay.metrics, PrometheusMetrics) else None
    state = ServerState(
        relay=relay,
        config=config,
        auth=Authenticator(
            key_service, master_key=config.server.master_key, required=config.auth_required, jwt=jwt
        ),
        access_log=access_log or AccessLog(),
        keys=key_service,
        metrics=prometheus,
        ledger=ledger,
        responses=ResponseStore(relay.responses_kv, ttl=config.server.responses_ttl),
        ui=_dashboard(relay, prometheus),
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        # Everything opened is closed in reverse order, also when a later step of the start fails
        # (an open store's thread would otherwise keep the failed process from exiting).
        async with AsyncExitStack() as opened:
            await opened.enter_async_context(relay)
            if jwt is not None:
                await jwt.load()
            await key_service.open()
            opened.push_async_callback(key_service.aclose)
            await record_config(key_service.audit, config, at=relay.clock.wall())
            if ledger is not None:
                await ledger.open()
                # After uvicorn drained the requests: every row they recorded is buffered by now.
                opened.push_async_callback(ledger.aclose)
            opened.callback(relay.metrics.close)
            alerts = _alerts(relay, state.metrics)
            if alerts is not None:
                await alerts.start()
                opened.push_async_callback(alerts.aclose)
            if state.ui is not None:
                await state.ui.sessions.open()
                opened.push_async_callback(state.ui.sessions.aclose)
                state.ui.history.start()
                opened.push_async_callback(state.ui.history.aclose)
            # Everything built so far (config, price data, codecs, pools) lives as long as the
            # process: out of the collector's sight, full collections stop walking it every time.
            gc.freeze()
            yield

    routes = [
        Route("POST", "/v1/chat/completions", openai.chat_completions),
        Route("POST", "/v1/embeddings", openai.embeddings),
        Route("POST", "/v1/messages", anthropic.messages),
        Route("POST", "/v1/messages/count_tokens", tokens.count_anthropic),
        Route("POST", "/v1/tokens/count", tokens.count_openai),
        Route("POST", "/v1/responses", responses.create_response),
        Route("GET", "/v1/responses/{response_id}", responses.get_response),
        Route("DELETE", "/v1/responses/{response_id}", responses.delete_response),
        Route("GET", "/v1/models", models.list_models),
        Route("GET", "/v1/key/info", key_info.key_info),
        Route("GET", "/v1/models/{model:path}", models.get_model),
        Route("GET", "/healthz", health.healthz),
        Route("GET", "/readyz", health.readyz),
        Route("GET", "/metrics", metrics.metrics),
        Route("GET", "/admin/usage", usage.usage),
        *admin.routes(),
        *ui_routes.routes(),
    ]
    routes.append(openapi.route(routes, version=_version()))
    app = App(routes, state=SimpleNamespace(llmrelay=state), lifespan=lifespan)
    return with_cors(app, config.server.cors)


def _ledger(config: Config, clock: Clock) -> LedgerWriter | None:
    if not config.ledger.enabled:
        return None
    settings = config.ledger
    return LedgerWriter(
        open_ledger(config.state.url or "memory://"),
        clock,
        batch=settings.batch,
        interval=settings.flush_interval,
        capacity=settings.buffer,
    )


def _dashboard(relay: Relay, metrics: PrometheusMetrics | None) -> Dashboard | None:
    """``/ui``'s state, when it is on and there is a master key to log in with."""
    server = relay.config.server
    if not server.ui or server.master_key is None:
        return None
    kv = open_state_kv(relay.config.state, relay.clock, namespace="ui", max_entries=10_000)
    return Dashboard(
        sessions=Sessions(kv),
        history=History(
            metrics.snapshot if metrics is not None else dict,
            relay.clock,
            tags=relay.config.telemetry.tag_labels,
        ),
        recent=Recent(),
        master_key=server.master_key.reveal().encode(),
        secure_cookies=server.tls is not None,
    )


def _alerts(relay: Relay, metrics: PrometheusMetrics | None) -> Evaluator | None:
    """The alert evaluator over this server's metrics, leases in the shared state store."""
    config = relay.config
    if config.alerts is None or metrics is None:
        return None
    from llmrelay.alerts.evaluator import Evaluator

    leases = open_state_kv(config.state, relay.clock, namespace="alerts", max_entries=10_000)
    return Evaluator(config.alerts, metrics.snapshot, leases, relay.clock)


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
