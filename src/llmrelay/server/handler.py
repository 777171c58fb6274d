"""The thin face: authenticate, read, decode, call the pipeline, encode (or stream), log.

Every model route (OpenAI chat, Anthropic messages, embeddings) is this one function with a
:class:`Face` describing its wire format. Nothing here knows a policy or a provider.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.config import Config
from llmrelay.context import CallStats, Context, new_request_id
from llmrelay.errors import InvalidRequest, RelayError
from llmrelay.keys import KeyService
from llmrelay.pricing.cost import format_usd
from llmrelay.relay import Relay
from llmrelay.server.access_log import AccessLog
from llmrelay.server.auth import Authenticator, Principal
from llmrelay.server.body import read_body
from llmrelay.server.disconnect import CLIENT_CLOSED, DisconnectGuard
from llmrelay.server.errors import ErrorBody, error_response
from llmrelay.server.streaming import FrameEncoder, Outcome, SSEResponse, shutting_down
from llmrelay.service import Request as CanonicalRequest
from llmrelay.service import Result
from llmrelay.streams import ChatStream
from llmrelay.types import ChatRequest, Usage

COST_HEADER = "x-llmrelay-cost"
"""USD for this request as a plain decimal; on a stream, an SSE comment line before the end."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class ServerState:
    """What routes need, built once in ``create_app`` (no module globals)."""

    relay: Relay
    config: Config
    auth: Authenticator
    access_log: AccessLog
    keys: KeyService
    metrics: CollectorRegistry

    async def readiness(self) -> dict[str, bool]:
        """Each store this replica depends on, and whether it answers."""
        return {"keys": await self.keys.ping(), "state": await self.relay.stores_ready()}


@dataclass(frozen=True, slots=True)
class Face:
    """How one wire format plugs into :func:`handle`."""

    route: str
    decode: Callable[[bytes], CanonicalRequest]
    encode: Callable[[Result, CanonicalRequest], dict[str, Any]]
    frames: Callable[[ChatStream, CanonicalRequest], FrameEncoder]
    error_body: ErrorBody


async def handle(request: Request, face: Face) -> Response:
    state: ServerState = request.app.state.llmrelay
    clock = state.relay.clock
    started = clock.now()
    request_id = _request_id(request)
    headers = {"x-request-id": request_id}
    principal: Principal | None = None
    model: str | None = None

    def log_line(status: int, **fields: Any) -> None:
        state.access_log.record(
            request_id=request_id,
            key_id=principal.id if principal else None,
            route=face.route,
            model=model,
            status=status,
            latency_ms=(clock.now() - started) * 1000,
            **fields,
        )

    guard: DisconnectGuard | None = None
    try:
        principal = await state.auth.principal(request.headers, client=client_host(request), route=face.route)
        body = await read_body(request, state.config.server)
        canonical = face.decode(body)
        model = canonical.model
        principal.check_model(model, state.relay.model_names)
        if principal.max_tokens is not None and isinstance(canonical, ChatRequest):
            capped = principal.max_tokens_for(canonical.max_tokens)
            canonical = msgspec.structs.replace(canonical, max_tokens=capped)
        ctx = _context(state, request, principal, request_id, model)
        guard = DisconnectGuard(request.receive)
        result = await state.relay.send(canonical, ctx)
    except RelayError as err:
        if guard is not None:
            guard.stop()
        response = error_response(err, face.error_body, headers=headers)
        log_line(response.status_code, target=None, error=err.code)
        return response
    except asyncio.CancelledError:
        if guard is None:
            raise
        guard.stop()
        if guard.absorb():
            log_line(CLIENT_CLOSED, target=None, outcome="client_closed")
            return Response(status_code=CLIENT_CLOSED)  # nobody is listening any more
        _uncancel()
        stopping = shutting_down()
        log_line(stopping.status, target=None, error=stopping.code, outcome="shutdown")
        return error_response(stopping, face.error_body, headers=headers)

    target = result.target
    if target:
        headers["x-llmrelay-target"] = target
    if ctx.stats is not None:
        headers["x-llmrelay-attempts"] = str(ctx.stats.attempts)
        headers["x-llmrelay-fallbacks"] = str(ctx.stats.fallbacks)
    if result.replayed:
        headers["idempotent-replayed"] = "true"
    if isinstance(result, ChatStream):
        costs: list[float | None] = []  # set by the trailer, once the stream has ended normally

        def trailer() -> str | None:
            costs.append(_cost(state.relay, result, result.final().usage))
            return None if costs[0] is None else f"{COST_HEADER}={format_usd(costs[0])}"

        def finished(outcome: Outcome, err: RelayError | None) -> None:
            usage = result.final().usage if outcome == "ok" else None
            status = CLIENT_CLOSED if outcome == "client_closed" else 200
            log_line(
                status,
                target=target,
                usage=usage,
                cost=costs[0] if costs and outcome == "ok" else None,
                stream=True,
                outcome=outcome,
                error=err.code if err else None,
            )

        return SSEResponse(
            result,
            face.frames(result, canonical),
            heartbeat=state.config.server.heartbeat,
            headers=headers,
            guard=guard,
            on_finish=finished,
            trailer=trailer,
        )
    guard.stop()
    payload = msgspec.json.encode(face.encode(result, canonical))
    cost = _cost(state.relay, result, result.usage)
    if cost is not None:
        headers[COST_HEADER] = format_usd(cost)
    log_line(200, target=target, usage=result.usage, cost=cost)
    return Response(payload, status_code=200, headers=headers, media_type="application/json")


def _cost(relay: Relay, result: Result, usage: Usage) -> float | None:
    """USD this answer cost; a replay cost nothing (no upstream call); None: price unknown."""
    return 0.0 if result.replayed else relay.cost(result.target, usage)


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def client_host(request: Request) -> str | None:
    """The TCP peer's address (proxy headers are not trusted: ``proxy_headers`` is off)."""
    return request.client.host if request.client else None


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else new_request_id()


def _context(
    state: ServerState, request: Request, principal: Principal, request_id: str, alias: str
) -> Context:
    ctx = Context(
        clock=state.relay.clock,
        request_id=request_id,
        principal=principal.id,
        tags=principal.metadata,
        stats=CallStats(),
    )
    timeout = request.headers.get("x-llmrelay-timeout")
    if timeout is not None:
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 3600:
            raise InvalidRequest(
                "x-llmrelay-timeout must be a number of seconds in (0, 3600]",
                param="x-llmrelay-timeout",
            )
        # A caller may shorten the deadline, never extend it past the operator's `timeout.total`.
        total = state.relay.total_timeout(alias)
        ctx = ctx.with_timeout(seconds if total is None else min(seconds, total))
    key = request.headers.get("idempotency-key")
    if key is not None:
        if not 0 < len(key) <= 255:
            raise InvalidRequest("Idempotency-Key must be 1-255 characters", param="idempotency-key")
        ctx = ctx.replace(idempotency_key=f"{principal.id}:{key}")
    return ctx
