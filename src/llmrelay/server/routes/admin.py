"""Admin API (virtual keys, circuit state, audit log), for the master key or a virtual key with the
``admin`` scope (``admin:read``: the ``GET`` routes only); closed when neither can exist.

``POST /admin/keys`` creates (the secret is in that response only; model names are trimmed;
``expires_at`` must be in the future), ``GET /admin/keys`` lists, ``GET /admin/keys/{id}`` shows,
``POST /admin/keys/{id}/rotate`` issues a new secret while the old one stays valid for
``grace_seconds`` (409 ``key_revoked`` / ``key_expired`` for a key whose new secret could never
work), ``DELETE /admin/keys/{id}`` revokes (at once in this process; other processes and replicas
cache keys for up to 5 s). ``GET /admin/audit`` lists the audit log, newest first (``limit``
1-1000, default 100; ``before`` an entry id, for the next page; ``action`` an exact action).
Every change is audited with its actor: ``master`` or the admin key's id.

The response cache: ``GET /admin/cache`` shows each caching alias's counters in the worker that
answers (:mod:`llmrelay.cache.stats`); ``POST /admin/cache/clear`` (``{"model": alias}``, or no
body for every alias) makes entries unreachable at once in this process and within a second in
the others sharing the store (:mod:`llmrelay.cache.generations`); ``POST /admin/cache/warm``
(``{"items": [...]}``, at most :data:`WARM_BATCH` lines of ``llmrelay cache warm``,
:mod:`llmrelay.cache.warm`) answers each item's outcome or error in order.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.cache.warm import WarmItem, warm
from llmrelay.errors import InvalidRequest, NotFound, RelayError
from llmrelay.server.asgi import Route
from llmrelay.server.body import read_body
from llmrelay.server.errors import error_response
from llmrelay.server.handler import ServerState, client_host
from llmrelay.wire.json_body import decode_json_object, validation_message
from llmrelay.wire.openai_errors import encode_error


class NewKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    tier: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    expires_at: float | None = None
    scopes: list[str] = msgspec.field(default_factory=list)
    routes: list[str] = msgspec.field(default_factory=list)
    ips: list[str] = msgspec.field(default_factory=list)
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Rotation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 3600.0


WARM_BATCH = 100
"""Items one ``POST /admin/cache/warm`` may carry (they run concurrently)."""


class CacheClear(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: str | None = None


class WarmBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    items: Annotated[list[WarmItem], msgspec.Meta(min_length=1, max_length=WARM_BATCH)]


T = TypeVar("T")
Handler = Callable[[Request, ServerState, str], Awaitable[Any]]
"""``(request, state, actor)``: the actor is who the audit log names."""


def _admin(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: ServerState = request.app.state.llmrelay
        try:
            write = request.method not in ("GET", "HEAD")
            actor = await state.auth.admin(request.headers, client=client_host(request), write=write)
            payload = await handler(request, state, actor)
        except RelayError as err:
            return error_response(err, encode_error, headers={})
        return Response(msgspec.json.encode(payload), media_type="application/json")

    return endpoint


async def _decode(request: Request, state: ServerState, kind: type[T]) -> T:
    raw = decode_json_object(await read_body(request, state.config.server))
    try:
        return msgspec.convert(raw, type=kind)
    except msgspec.ValidationError as err:
        raise InvalidRequest(f"invalid request body: {validation_message(err)}") from err


async def create_key(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    spec = await _decode(request, state, NewKey)
    secret, key = await state.keys.create(
        name=spec.name,
        models=spec.models,
        tier=spec.tier,
        metadata=spec.metadata,
        expires_at=spec.expires_at,
        scopes=spec.scopes,
        routes=spec.routes,
        ips=spec.ips,
        max_tokens=spec.max_tokens,
        actor=actor,
    )
    return {"key": secret, **key.public()}


async def list_keys(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    return {"object": "list", "data": [k.public() for k in await state.keys.list()]}


async def get_key(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    key_id = request.path_params["key_id"]
    key = await state.keys.get(key_id)
    if key is None:
        raise NotFound(f"no key with id {key_id}", param="key_id")
    return key.public()


async def rotate_key(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    has_body = request.headers.get("content-length") not in (None, "0")
    spec = await _decode(request, state, Rotation) if has_body else Rotation()
    key_id = request.path_params["key_id"]
    secret, rotated = await state.keys.rotate(key_id, grace_seconds=spec.grace_seconds, actor=actor)
    return {"key": secret, **rotated.public()}


async def revoke_key(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    revoked = await state.keys.revoke(request.path_params["key_id"], actor=actor)
    return {"id": revoked.id, "revoked": True}


async def list_circuits(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    return {"object": "list", "data": state.relay.circuits()}


class AuditQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    before: Annotated[int, msgspec.Meta(ge=1)] | None = None
    action: str | None = None


async def list_audit(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    try:
        query = msgspec.convert(dict(request.query_params), AuditQuery, strict=False)
    except msgspec.ValidationError as err:
        raise InvalidRequest(f"invalid query: {validation_message(err)}") from err
    entries = await state.keys.audit.query(limit=query.limit, before=query.before, action=query.action)
    return {"object": "list", "data": entries}


async def cache_stats(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    cache = state.relay.cache
    stats = cache.stats() if cache is not None else {"store_errors": 0, "aliases": {}}
    return {"object": "cache", "worker_pid": os.getpid(), **stats}


async def cache_clear(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    has_body = request.headers.get("content-length") not in (None, "0")
    spec = await _decode(request, state, CacheClear) if has_body else CacheClear()
    cache = state.relay.cache
    if cache is None:
        raise NotFound("no model alias has a cache configured", param="model")
    cleared = await cache.clear(spec.model)
    return {"cleared": cleared or "*"}


async def cache_warm(request: Request, state: ServerState, actor: str) -> dict[str, Any]:
    batch = await _decode(request, state, WarmBatch)

    async def one(item: WarmItem) -> dict[str, Any]:
        try:
            return {"outcome": await warm(state.relay, item)}
        except RelayError as err:
            return {"error": {"code": err.code, "message": err.message, "status": err.status}}

    return {"results": await asyncio.gather(*(one(item) for item in batch.items))}


def routes() -> list[Route]:
    return [
        Route("GET", "/admin/cache", _admin(cache_stats)),
        Route("POST", "/admin/cache/clear", _admin(cache_clear)),
        Route("POST", "/admin/cache/warm", _admin(cache_warm)),
        Route("GET", "/admin/circuits", _admin(list_circuits)),
        Route("POST", "/admin/keys", _admin(create_key)),
        Route("GET", "/admin/keys", _admin(list_keys)),
        Route("GET", "/admin/keys/{key_id}", _admin(get_key)),
        Route("POST", "/admin/keys/{key_id}/rotate", _admin(rotate_key)),
        Route("DELETE", "/admin/keys/{key_id}", _admin(revoke_key)),
        Route("GET", "/admin/audit", _admin(list_audit)),
    ]
