"""The thin face: authenticate, read, decode, call the pipeline, encode (or stream), log.

Every model route (OpenAI chat, Anthropic messages, embeddings) is this one function with a
:class:`Face` describing its wire format. Nothing here knows a policy or a provider.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.config import Config
from llmrelay.context import CallStats, Context, new_request_id
from llmrelay.errors import InvalidRequest, RelayError
from llmrelay.keys import KeyService
from llmrelay.ledger import LedgerEntry, LedgerWriter
from llmrelay.pricing.cost import format_usd
from llmrelay.relay import Relay
from llmrelay.server.access_log import AccessLog
from llmrelay.server.auth import Authenticator, Principal
from llmrelay.server.body import read_body
from llmrelay.server.disconnect import CLIENT_CLOSED, DisconnectGuard, disconnect_signal
from llmrelay.server.errors import ErrorBody, error_response
from llmrelay.server.headers import header_map
from llmrelay.server.ratelimit_headers import add_rate_headers
from llmrelay.server.response_store import ResponseStore
from llmrelay.server.streaming import FrameEncoder, Outcome, SSEResponse, shutting_down
from llmrelay.server.tags import HEADER as TAGS_HEADER
from llmrelay.server.tags import request_tags
from llmrelay.service import Request as CanonicalRequest
from llmrelay.service import Result
from llmrelay.streams import ChatStream
from llmrelay.telemetry.metrics import RequestRecord, StreamTimer
from llmrelay.telemetry.prometheus import PrometheusMetrics
from llmrelay.types import ChatRequest, Usage

if TYPE_CHECKING:
    from llmrelay.server.ui.routes import Dashboard

COST_HEADER = "x-llmrelay-cost"
"""USD for this request as a plain decimal; on a stream, an SSE comment line before the end."""
_NO_USAGE = Usage()
_CACHE_SERVED = frozenset({"hit", "stale"})
"""Cache outcomes that answered from a stored entry (``replayed``, but not an idempotent replay)."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
"""W3C trace context, version 00; anything else is ignored, as the recommendation says."""


@dataclass(frozen=True, slots=True)
class ServerState:
    """What routes need, built once in ``create_app`` (no module globals)."""

    relay: Relay
    config: Config
    auth: Authenticator
    access_log: AccessLog
    keys: KeyService
    metrics: PrometheusMetrics | None
    """What ``/metrics`` shows: the relay's backend when it is Prometheus (the server's always is)."""
    responses: ResponseStore
    ledger: LedgerWriter | None = None
    """Usage rows of every request that reached the pipeline (``None``: ``ledger.enabled`` off)."""
    ui: Dashboard | None = None
    """The dashboard's state (sessions, history, recent calls) when ``/ui`` is on."""

    async def readiness(self) -> dict[str, bool]:
        """Each store this replica depends on, and whether it answers."""
        # Not the ledger: it buffers through an outage, so this replica can serve without it.
        return {"keys": await self.keys.ping(), "state": await self.relay.stores_ready()}


@dataclass(frozen=True, slots=True)
class Face:
    """How one wire format plugs into :func:`handle`.

    ``prepare`` and ``settle`` are for a face with state of its own (the Responses API's stored
    conversations): ``prepare`` may rewrite the decoded request once the caller is known,
    ``settle`` sees the result before it is encoded (a stream: before its first frame).
    """

    route: str
    decode: Callable[[bytes], CanonicalRequest]
    encode: Callable[[Result, CanonicalRequest], dict[str, Any]]
    frames: Callable[[ChatStream, CanonicalRequest], FrameEncoder]
    error_body: ErrorBody
    prepare: Callable[[CanonicalRequest, Context], Awaitable[CanonicalRequest]] | None = None
    settle: Callable[[Result, Context], Awaitable[None]] | None = None
    """For a stream it only attaches observers (it must not fail: the stream is open)."""
    anthropic: bool = False
    """Anthropic's ``anthropic-ratelimit-*`` headers besides OpenAI's ``x-ratelimit-*``."""


async def handle(request: Request, face: Face) -> Response:
    state: ServerState = request.app.state.llmrelay
    relay = state.relay
    clock = relay.clock
    started = clock.now()
    sent = header_map(request)
    request_id = request_id_of(sent)
    headers = {"x-request-id": request_id}
    principal: Principal | None = None
    model: str | None = None
    ctx: Context | None = None

    def finish(status: int, **fields: Any) -> None:
        """The one end of every call: its record goes to the access log, the metrics and the
        usage ledger."""
        now = clock.now()
        end = fields.pop("first_chunk", None) or now  # a stream's overhead ends at its first chunk
        stats = ctx.stats if ctx is not None else None
        overhead = None
        if stats is not None and stats.attempts:
            overhead = max(0.0, end - started - stats.upstream_seconds - stats.backoff_seconds)
        metadata = principal.metadata if principal is not None else {}
        record = RequestRecord(
            request_id=request_id,
            route=face.route,
            status=status,
            seconds=now - started,
            model=model,
            alias=_alias(relay, model),
            key_id=principal.id if principal else None,
            user=metadata.get("user"),
            team=metadata.get("team"),
            tier=principal.tier if principal is not None else None,
            tags=ctx.tags if ctx is not None else metadata,
            attempts=stats.attempts if stats else 0,
            fallbacks=stats.fallbacks if stats else 0,
            retries=stats.attempts - len(stats.targets) if stats else 0,
            overhead=overhead,
            cache=stats.cache if stats else None,
            cost_saved=stats.cost_saved if stats else None,
            trace_id=(stats.trace_id if stats else None) or (ctx.trace_id if ctx is not None else None),
            at=clock.wall(),
            request_limit=stats.requests if stats else None,
            token_limit=stats.tokens if stats else None,
            **fields,
        )
        state.access_log.record(record)
        relay.metrics.request(record)
        if state.ui is not None:
            state.ui.recent.add(record)
        if state.ledger is not None and principal is not None and model is not None:
            state.ledger.record(_ledger_entry(record))

    guard: DisconnectGuard | None = None
    stats: CallStats | None = None
    try:
        principal = await state.auth.principal(sent, client=client_host(request), route=face.route)
        body = await read_body(request, state.config.server)
        canonical = face.decode(body)
        model = canonical.model
        principal.check_model(model, relay.model_names)
        if principal.max_tokens is not None and isinstance(canonical, ChatRequest):
            capped = principal.max_tokens_for(canonical.max_tokens)
            canonical = msgspec.structs.replace(canonical, max_tokens=capped)
        ctx = _context(state, sent, principal, request_id, canonical)
        stats = ctx.stats
        guard = DisconnectGuard(request.receive, disconnect_signal(request.scope))
        if face.prepare is not None:
            canonical = await face.prepare(canonical, ctx)
        result = await relay.send(canonical, ctx)
        if face.settle is not None:
            await face.settle(result, ctx)
    except RelayError as err:
        if guard is not None:
            guard.stop()
        if stats is not None:
            add_rate_headers(headers, stats, anthropic=face.anthropic, wall=clock.wall())
        response = error_response(err, face.error_body, headers=headers)
        finish(response.status_code, error=err.code)
        return response
    except asyncio.CancelledError:
        if guard is None:
            raise
        guard.stop()
        if guard.absorb():
            finish(CLIENT_CLOSED, outcome="client_closed")
            return Response(status_code=CLIENT_CLOSED)  # nobody is listening any more
        _uncancel()
        stopping = shutting_down()
        finish(stopping.status, error=stopping.code, outcome="shutdown")
        return error_response(stopping, face.error_body, headers=headers)
    except Exception:  # not ours: the edge answers 500; a client leaving now must not cancel that
        if guard is not None:
            guard.stop()
        raise

    target = result.target
    provider = result.provider
    if target:
        headers["x-llmrelay-target"] = target
    stats = ctx.stats
    cached = stats.cache if stats is not None else None
    if stats is not None:
        headers["x-llmrelay-attempts"] = str(stats.attempts)
        headers["x-llmrelay-fallbacks"] = str(stats.fallbacks)
        if cached is not None:
            headers["x-llmrelay-cache"] = cached
        if stats.requests is not None or stats.tokens is not None:
            add_rate_headers(headers, stats, anthropic=face.anthropic, wall=clock.wall())
    if result.replayed and cached not in _CACHE_SERVED:
        headers["idempotent-replayed"] = "true"
    if isinstance(result, ChatStream):
        costs: list[float | None] = []  # set by the trailer, once the stream has ended normally
        timer: StreamTimer | None = None
        if relay.metrics.enabled or state.access_log.enabled:
            timer = StreamTimer(clock.now)
            result.observe(timer)

        def trailer() -> str | None:
            costs.append(_cost(relay, result, result.final().usage))
            return None if costs[0] is None else f"{COST_HEADER}={format_usd(costs[0])}"

        def finished(outcome: Outcome, err: RelayError | None) -> None:
            usage = result.final().usage if outcome == "ok" else None
            status = CLIENT_CLOSED if outcome == "client_closed" else 200
            times = timer.times() if timer is not None else None
            finish(
                status,
                target=target,
                provider=provider,
                usage=usage,
                cost=costs[0] if costs and outcome == "ok" else None,
                answered_by=result.model,
                stream=True,
                outcome=outcome,
                error=err.code if err else None,
                first_chunk=times.first if times else None,
                ttft=times.first - started if times else None,
                stream_times=times,
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
    cost = _cost(relay, result, result.usage)
    if cost is not None:
        headers[COST_HEADER] = format_usd(cost)
    finish(200, target=target, provider=provider, usage=result.usage, cost=cost, answered_by=result.model)
    return Response(payload, status_code=200, headers=headers, media_type="application/json")


def _alias(relay: Relay, model: str | None) -> str:
    """The configured name ``model`` resolves to ("" for none): the only model label metrics use."""
    return (relay.model_names.alias(model) if model is not None else None) or ""


def _ledger_entry(record: RequestRecord) -> LedgerEntry:
    """The ledger row of one request. A failed request has no usage and costs nothing; an answer
    from a target without a price has an unknown cost (``None``)."""
    usage = record.usage or _NO_USAGE
    cost = record.cost
    return LedgerEntry(
        request_id=record.request_id,
        at=record.at,
        key_id=record.key_id,
        user=record.user,
        team=record.team,
        tags=dict(record.tags),
        alias=record.model or "",
        target=record.target,
        model=record.answered_by,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cache_write_input_tokens=usage.cache_write_input_tokens,
        output_tokens=usage.output_tokens,
        cost=0.0 if cost is None and record.status >= 400 else cost,
        status=record.status,
    )


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


def request_id_of(headers: Mapping[str, str]) -> str:
    """The caller's ``x-request-id`` when it is a sane one, else a new id."""
    given = headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else new_request_id()


def _context(
    state: ServerState,
    sent: Mapping[str, str],
    principal: Principal,
    request_id: str,
    canonical: CanonicalRequest,
) -> Context:
    """The call's context from the request's headers (``sent``) and the caller's key."""
    alias = canonical.model
    tags = principal.metadata
    metadata = canonical.extension("openai").get("metadata") if isinstance(canonical, ChatRequest) else None
    header = sent.get(TAGS_HEADER)
    if header is not None or metadata is not None:
        # The key's metadata wins: a caller cannot re-attribute what its operator set.
        tags = {**request_tags(header, metadata), **principal.metadata}
    ctx = Context(
        clock=state.relay.clock,
        request_id=request_id,
        principal=principal.id,
        user=principal.metadata.get("user"),
        team=principal.metadata.get("team"),
        tier=principal.tier,
        tags=tags,
        stats=CallStats(),
    )
    parent = sent.get("traceparent")
    found = _TRACEPARENT.match(parent) if parent is not None else None
    if found is not None and found[1] != "0" * 32 and found[2] != "0" * 16:
        # Passed upstream as it came, or the parent of this call's span when tracing is on.
        ctx = ctx.replace(traceparent=parent, trace_id=found[1])
    timeout = sent.get("x-llmrelay-timeout")
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
    key = sent.get("idempotency-key")
    if key is not None:
        if not 0 < len(key) <= 255:
            raise InvalidRequest("Idempotency-Key must be 1-255 characters", param="idempotency-key")
        ctx = ctx.replace(idempotency_key=f"{principal.id}:{key}")
    cache_control = sent.get("cache-control")
    if cache_control is not None:
        ctx = ctx.replace(cache_control=cache_control)
    return ctx
