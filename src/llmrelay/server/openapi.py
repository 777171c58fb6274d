"""``GET /openapi.json``: an OpenAPI 3.1 description of the server's own endpoints.

Request bodies are generated from the msgspec types the codecs decode with
(:data:`~llmrelay.wire.openai_inbound.CHAT_BODY` and its siblings, the admin API's structs), so
the schemas cannot drift from what the server reads; the small answer shapes are written here.
:data:`OPERATIONS` holds one entry per mounted route, keyed by method and path as
:class:`~llmrelay.server.asgi.Route` spells them; a test checks that the two sets are equal, so a
route added without a description (or a description left for a route that is gone) fails CI.
The document is built once per app and served as bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.server.asgi import Route

_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    tag: str
    body: type[msgspec.Struct] | None = None
    answer: dict[str, Any] | None = None
    """Schema of the 200 answer (JSON unless ``media`` says otherwise)."""
    media: str = _JSON
    anthropic: bool = False
    """Errors in Anthropic's shape (``/v1/messages``) instead of OpenAI's."""
    auth: bool = True
    body_required: bool = True
    query: tuple[tuple[str, dict[str, Any]], ...] = ()
    """Query parameters: (name, schema)."""


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


_STR = {"type": "string"}
_NUM = {"type": "number"}
_MODEL = _obj(id=_STR, object={"const": "model"}, created={"type": "integer"}, owned_by=_STR)
_KEY = _obj(
    id=_STR,
    display=_STR,
    name={"type": ["string", "null"]},
    models={"type": "array", "items": _STR},
    scopes={"type": "array", "items": _STR},
    routes={"type": "array", "items": _STR},
    ips={"type": "array", "items": _STR},
    max_tokens={"type": ["integer", "null"]},
    tier={"type": ["string", "null"]},
    created_at=_NUM,
    expires_at={"type": ["number", "null"]},
    revoked_at={"type": ["number", "null"]},
)
_NEW_KEY = {**_KEY, "properties": {"key": _STR, **_KEY["properties"]}}
_CHAT = _obj(
    id=_STR,
    object={"const": "chat.completion"},
    created={"type": "integer"},
    model=_STR,
    choices={"type": "array", "items": {"type": "object"}},
    usage={"type": "object"},
)
_MESSAGE = _obj(id=_STR, type={"const": "message"}, role={"const": "assistant"}, content={"type": "array"})
_EMBEDDINGS = _obj(object={"const": "list"}, data={"type": "array"}, model=_STR, usage={"type": "object"})
_AUDIT_ENTRY = _obj(id={"type": "integer"}, at=_NUM, actor=_STR, action=_STR, target=_STR, details={})


_RESPONSE = _obj(id=_STR, object={"const": "response"}, status=_STR, model=_STR, output={"type": "array"})


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return _obj(object={"const": "list"}, data={"type": "array", "items": item})


def operations() -> dict[tuple[str, str], Operation]:
    """Every route the server mounts, described (imports here: the admin module imports the
    handler, which this module must not import at load time)."""
    from llmrelay.server.routes.admin import CacheClear, NewKey, Rotation, WarmBatch
    from llmrelay.wire.anthropic_inbound import MESSAGES_BODY
    from llmrelay.wire.openai_embeddings import EMBEDDINGS_BODY
    from llmrelay.wire.openai_inbound import CHAT_BODY
    from llmrelay.wire.openai_responses import RESPONSES_BODY

    return {
        ("POST", "/v1/chat/completions"): Operation(
            "Chat completion (OpenAI wire format); `stream: true` answers with server-sent events",
            "models",
            CHAT_BODY,
            _CHAT,
        ),
        ("POST", "/v1/messages"): Operation(
            "Message (Anthropic wire format); `stream: true` answers with server-sent events",
            "models",
            MESSAGES_BODY,
            _MESSAGE,
            anthropic=True,
        ),
        ("POST", "/v1/embeddings"): Operation(
            "Embeddings (OpenAI wire format)", "models", EMBEDDINGS_BODY, _EMBEDDINGS
        ),
        ("POST", "/v1/responses"): Operation(
            "Response (OpenAI Responses API); `stream: true` answers with typed `response.*` events",
            "models",
            RESPONSES_BODY,
            _RESPONSE,
        ),
        ("GET", "/v1/responses/{response_id}"): Operation(
            "A stored response of this key", "models", answer=_RESPONSE
        ),
        ("DELETE", "/v1/responses/{response_id}"): Operation(
            "Delete a stored response of this key",
            "models",
            answer=_obj(id=_STR, object={"const": "response"}, deleted={"type": "boolean"}),
        ),
        ("POST", "/v1/messages/count_tokens"): Operation(
            "Count a prompt's input tokens (Anthropic wire format; `max_tokens` not needed)",
            "models",
            MESSAGES_BODY,
            _obj(input_tokens={"type": "integer"}),
            anthropic=True,
        ),
        ("POST", "/v1/tokens/count"): Operation(
            "Count a prompt's input tokens (`messages` as in chat completions, or a Responses `input`)",
            "models",
            CHAT_BODY,
            _obj(model=_STR, input_tokens={"type": "integer"}, source={"enum": ["provider", "estimate"]}),
        ),
        ("GET", "/v1/key/info"): Operation(
            "The calling key: its tier's limits with the headroom left, its budgets and spend",
            "models",
            answer=_obj(key={"type": "object"}, limits={"type": "object"}, budgets={"type": "array"}),
        ),
        ("GET", "/v1/models"): Operation(
            "The model aliases this key may use", "models", answer=_list(_MODEL)
        ),
        ("GET", "/v1/models/{model:path}"): Operation("One model alias", "models", answer=_MODEL),
        ("GET", "/healthz"): Operation(
            "The process answers", "operations", answer=_obj(status=_STR), auth=False
        ),
        ("GET", "/readyz"): Operation(
            "The process and its stores answer (503 when a store does not)",
            "operations",
            answer=_obj(status=_STR, checks={"type": "object"}),
            auth=False,
        ),
        ("GET", "/metrics"): Operation(
            "Prometheus metrics", "operations", answer=_STR, media="text/plain", auth=False
        ),
        ("GET", "/openapi.json"): Operation(
            "This document", "operations", answer={"type": "object"}, auth=False
        ),
        ("GET", "/admin/circuits"): Operation("Circuit breaker state per target", "admin", answer=_list({})),
        ("POST", "/admin/keys"): Operation(
            "Create a virtual key (its secret is shown once)", "admin", NewKey, _NEW_KEY
        ),
        ("GET", "/admin/keys"): Operation(
            "List virtual keys (never their secrets)", "admin", answer=_list(_KEY)
        ),
        ("GET", "/admin/keys/{key_id}"): Operation("One virtual key", "admin", answer=_KEY),
        ("POST", "/admin/keys/{key_id}/rotate"): Operation(
            "Issue a new secret; the old one stays valid for `grace_seconds`",
            "admin",
            Rotation,
            _NEW_KEY,
            body_required=False,
        ),
        ("DELETE", "/admin/keys/{key_id}"): Operation(
            "Revoke a virtual key", "admin", answer=_obj(id=_STR, revoked={"type": "boolean"})
        ),
        ("GET", "/admin/usage"): Operation(
            "Requests, tokens and cost from the usage ledger, grouped",
            "admin",
            answer={"type": "object"},
            query=(
                ("group_by", _STR),
                ("from", _STR),
                ("to", _STR),
                ("format", {"enum": ["json", "csv"]}),
            ),
        ),
        ("GET", "/admin/cache"): Operation(
            "Response cache counters per caching alias (this worker's)", "admin", answer={"type": "object"}
        ),
        ("POST", "/admin/cache/clear"): Operation(
            "Clear one alias's cached answers (`model`), or every alias's without a body",
            "admin",
            CacheClear,
            _obj(cleared=_STR),
            body_required=False,
        ),
        ("POST", "/admin/cache/warm"): Operation(
            "Store answers (or call the model for them) for up to 100 items",
            "admin",
            WarmBatch,
            _obj(results={"type": "array"}),
        ),
        **_dashboard(),
        ("GET", "/admin/audit"): Operation(
            "Audit log of key and config changes, newest first",
            "admin",
            answer=_list(_AUDIT_ENTRY),
            query=(
                ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ("before", {"type": "integer", "minimum": 1}),
                ("action", _STR),
            ),
        ),
    }


def _dashboard() -> dict[tuple[str, str], Operation]:
    """``/ui``: HTML pages and form posts behind a session cookie (not an API, listed so the
    document names every route the server answers)."""
    page = {"type": "string"}

    def html(summary: str) -> Operation:
        return Operation(summary, "dashboard", answer=page, media="text/html", auth=False)

    def form(summary: str) -> Operation:
        return Operation(
            summary, "dashboard", answer=page, media="text/html", auth=False, body_required=False
        )

    return {
        ("GET", "/ui"): html("Dashboard overview (charts drawn as SVG on the server)"),
        ("GET", "/ui/login"): html("Log-in page (the master key)"),
        ("POST", "/ui/login"): form("Log in: sets an HttpOnly, SameSite=Strict session cookie"),
        ("POST", "/ui/logout"): form("Log out"),
        ("GET", "/ui/usage"): html(
            "Tokens and spend over time by key, team, model and tag; the ledger's totals"
        ),
        ("GET", "/ui/limits"): html("Rate-limit headroom per key, tier and kind"),
        ("GET", "/ui/requests"): html("Request log browser"),
        ("GET", "/ui/keys"): html("Key management"),
        ("POST", "/ui/keys"): form("Create a key (CSRF token required)"),
        ("POST", "/ui/keys/{key_id}/rotate"): form("Rotate a key (CSRF token required)"),
        ("POST", "/ui/keys/{key_id}/revoke"): form("Revoke a key (CSRF token required)"),
        ("GET", "/ui/ui.css"): Operation(
            "The dashboard's stylesheet", "dashboard", answer=page, media="text/css", auth=False
        ),
    }


def document(routes: Iterable[Route], *, version: str) -> bytes:
    """The OpenAPI document for ``routes``; :class:`KeyError` names a route without a description."""
    described = operations()
    components: dict[str, Any] = dict(_ERRORS)
    for body in {op.body for op in described.values() if op.body is not None}:
        prefix = _prefix(body)  # codecs name their private types alike (_Text): one namespace each
        _, defs = msgspec.json.schema_components(
            [body], ref_template=f"#/components/schemas/{prefix}{{name}}"
        )
        components.update({prefix + name: schema for name, schema in defs.items()})
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op = described[(route.method, route.path)]
        path = re.sub(r"\{(\w+)(?::path)?\}", r"{\1}", route.path)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, op)
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "llmrelay", "version": version, "description": "An LLM gateway's own endpoints."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }
    return msgspec.json.encode(doc)


def _prefix(body: type[msgspec.Struct]) -> str:
    return body.__module__.rpartition(".")[2] + "."


def _operation(route: Route, op: Operation) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/" + ("AnthropicError" if op.anthropic else "OpenAIError")}
    answer = {"description": "OK"}
    if op.answer is not None:
        answer["content"] = {op.media: {"schema": op.answer}}  # type: ignore[assignment]
    responses: dict[str, Any] = {"200": answer}
    for status, why in _STATUSES:
        responses[status] = {"description": why, "content": {_JSON: {"schema": error}}}
    out: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower()).strip('_')}",
        "responses": responses,
        "security": [{"bearer": []}, {"apiKey": []}] if op.auth else [],
    }
    params = [
        *(
            {"name": p, "in": "path", "required": True, "schema": _STR}
            for p in re.findall(r"\{(\w+)(?::path)?\}", route.path)
        ),
        *({"name": name, "in": "query", "schema": schema} for name, schema in op.query),
    ]
    if params:
        out["parameters"] = params
    if op.body is not None:
        ref = {"$ref": "#/components/schemas/" + _prefix(op.body) + op.body.__name__}
        out["requestBody"] = {
            "required": op.body_required,
            "content": {_JSON: {"schema": ref}},
        }
    return out


_STATUSES = (
    ("400", "Invalid request"),
    ("401", "Missing or invalid key"),
    ("403", "This key may not do this"),
    ("404", "No such model, key or route"),
    ("408", "The request did not arrive in time"),
    ("413", "Body too large"),
    ("429", "Rate limited (upstream)"),
)
_ERROR_FIELDS = _obj(
    message=_STR, type=_STR, param={"type": ["string", "null"]}, code={"type": ["string", "null"]}
)
_ERRORS = {
    "OpenAIError": {**_obj(error=_ERROR_FIELDS), "required": ["error"]},
    "AnthropicError": {**_obj(type={"const": "error"}, error=_ERROR_FIELDS), "required": ["type", "error"]},
}


def route(routes: Iterable[Route], *, version: str) -> Route:
    """The ``GET /openapi.json`` route describing ``routes`` and itself (built now, served as bytes)."""

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type=_JSON)

    own = Route("GET", "/openapi.json", endpoint)
    body = document([*routes, own], version=version)
    return own
