"""``/ui``: the dashboard's endpoints, its sessions and its security headers.

Every page: ``Content-Security-Policy`` with no script source at all (pages have none), styles and
images from this origin only (charts are inline SVG elements, which CSP treats as markup),
``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (no framing), ``Cache-Control:
no-store`` (pages show key ids and a new secret), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer``. The session cookie is ``HttpOnly``, ``SameSite=Strict``, path
``/ui``, ``Secure`` when the server serves TLS. Every POST checks the CSRF token (the session's;
for the login form, a double-submit token in a short-lived cookie). Without ``server.master_key``
there is nobody to log in as: every ``/ui`` path is a 404.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qs

import msgspec
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from llmrelay.errors import RelayError
from llmrelay.ledger.entry import UsageQuery
from llmrelay.server.asgi import Route
from llmrelay.server.body import read_body
from llmrelay.server.handler import ServerState
from llmrelay.server.ui import pages
from llmrelay.server.ui.headroom import headroom_rows
from llmrelay.server.ui.history import History, Recent
from llmrelay.server.ui.sessions import COOKIE, Sessions, same

LOGIN_COOKIE = "llmrelay_ui_login"
DAY = 86_400.0
HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Dashboard:
    sessions: Sessions
    history: History
    recent: Recent
    master_key: bytes
    secure_cookies: bool


Page = Callable[[Request, ServerState, Dashboard, str], Awaitable[Response]]


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, headers=HEADERS, media_type="text/html; charset=utf-8")


def _redirect(to: str) -> Response:
    return RedirectResponse(to, status_code=303, headers=HEADERS)


def _dashboard(request: Request) -> tuple[ServerState, Dashboard] | None:
    state: ServerState = request.app.state.llmrelay
    return (state, state.ui) if state.ui is not None else None


def _signed_in(page: Page, *, post: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Runs ``page`` for a live session (and, for a POST, a matching CSRF token)."""

    async def endpoint(request: Request) -> Response:
        found = _dashboard(request)
        if found is None:
            return _html("<h1>Not found</h1>", 404)
        state, ui = found
        csrf = await ui.sessions.csrf(request.cookies.get(COOKIE))
        if csrf is None:
            return _redirect("/ui/login")
        form: dict[str, str] = {}
        if post:
            form = await _form(request, state)
            if not same(csrf, form.get("csrf")):
                return _html("<h1>Forbidden: stale or missing form token</h1>", 403)
        request.state.form = form
        return await page(request, state, ui, csrf)

    return endpoint


async def _form(request: Request, state: ServerState) -> dict[str, str]:
    raw = await read_body(request, state.config.server)
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=50)
    return {name: values[0] for name, values in parsed.items()}


def _cookie(response: Response, ui: Dashboard, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/ui", httponly=True, samesite="strict", secure=ui.secure_cookies
    )


async def login_form(request: Request) -> Response:
    found = _dashboard(request)
    if found is None:
        return _html("<h1>Not found</h1>", 404)
    _, ui = found
    token = secrets.token_urlsafe(32)
    response = _html(pages.login(token))
    _cookie(response, ui, LOGIN_COOKIE, token, 600)
    return response


async def login(request: Request) -> Response:
    found = _dashboard(request)
    if found is None:
        return _html("<h1>Not found</h1>", 404)
    state, ui = found
    form = await _form(request, state)
    if not same(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return _html("<h1>Forbidden: stale login form, reload it</h1>", 403)
    presented = form.get("master_key", "").encode()
    if not hmac.compare_digest(presented, ui.master_key):
        token = secrets.token_urlsafe(32)
        response = _html(pages.login(token, "That is not the master key."), 401)
        _cookie(response, ui, LOGIN_COOKIE, token, 600)
        return response
    session_id, _ = await ui.sessions.create()
    response = _redirect("/ui")
    _cookie(response, ui, COOKIE, session_id, int(ui.sessions.ttl))
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


async def _logout(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    await ui.sessions.end(request.cookies.get(COOKIE, ""))
    response = _redirect("/ui/login")
    response.delete_cookie(COOKIE, path="/ui")
    return response


async def _overview(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    snapshot = state.metrics.snapshot() if state.metrics is not None else {}
    errors: dict[str, float] = {}
    spend: dict[str, float] = {}
    tokens: dict[str, float] = {}
    for (name, labels), value in snapshot.items():
        found = dict(labels)
        if name == "llmrelay_upstream_errors_total" and value:
            key = f"{found['error_type']} ({found['target']})"
            errors[key] = errors.get(key, 0.0) + value
        elif name == "llmrelay_cost_usd_total" and value:
            key = f"{found['team'] or '-'} / {found['key'] or '-'}"
            spend[key] = spend.get(key, 0.0) + value
        elif name == "llmrelay_tokens_total" and value:
            tokens[found["kind"]] = tokens.get(found["kind"], 0.0) + value
    body = pages.overview(list(ui.history.points), state.relay.circuits(), errors, spend, tokens)
    return _html(pages.layout("Overview", body, csrf=csrf, active="/ui"))


async def _usage(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    rows: list[dict[str, Any]] = []
    if state.ledger is not None:
        since = state.relay.clock.wall() - DAY
        found = await state.ledger.store.usage(UsageQuery(group_by="model", since=since))
        rows = [msgspec.to_builtins(row) for row in found]
    body = pages.usage(list(ui.history.points), ui.history.dimensions, rows)
    return _html(pages.layout("Usage", body, csrf=csrf, active="/ui/usage"))


async def _limits(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    snapshot = state.metrics.snapshot() if state.metrics is not None else {}
    rows = headroom_rows(snapshot, state.relay.clock.wall())
    body = pages.limits(list(ui.history.points), rows)
    return _html(pages.layout("Limits", body, csrf=csrf, active="/ui/limits"))


async def _requests(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    query = {k: request.query_params.get(k, "")[:200] for k in ("request_id", "key", "alias", "status")}
    found = ui.recent.search(
        request_id=query["request_id"], key=query["key"], alias=query["alias"], status=query["status"]
    )
    body = pages.requests(found, query)
    return _html(pages.layout("Requests", body, csrf=csrf, active="/ui/requests"))


async def _keys(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    return await _key_page(state, csrf)


async def _key_page(
    state: ServerState, csrf: str, *, new_secret: str | None = None, status: int = 200
) -> Response:
    listed = [key.public() for key in await state.keys.list()]
    body = pages.keys(listed, csrf, new_secret=new_secret)
    return _html(pages.layout("Keys", body, csrf=csrf, active="/ui/keys"), status)


async def _create_key(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    form: dict[str, str] = request.state.form
    models = [m.strip() for m in form.get("models", "").split(",") if m.strip()]
    team = form.get("team", "").strip()
    try:
        secret, _ = await state.keys.create(
            name=form.get("name", "").strip() or None,
            models=models,
            metadata={"team": team} if team else None,
        )
    except RelayError as err:
        return _key_error(err, csrf)
    return await _key_page(state, csrf, new_secret=secret)


async def _rotate_key(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    try:
        secret, _ = await state.keys.rotate(request.path_params["key_id"], grace_seconds=0)
    except RelayError as err:
        return _key_error(err, csrf)
    return await _key_page(state, csrf, new_secret=secret)


async def _revoke_key(request: Request, state: ServerState, ui: Dashboard, csrf: str) -> Response:
    try:
        await state.keys.revoke(request.path_params["key_id"])
    except RelayError as err:
        return _key_error(err, csrf)
    return _redirect("/ui/keys")


def _key_error(err: RelayError, csrf: str) -> Response:
    """A refused key action: the message (canonical, never a secret) in the page, the error's status."""
    body = f'<p class="bad">{escape(err.message)}</p><p><a href="/ui/keys">Back to keys</a></p>'
    return _html(pages.layout("Keys", body, csrf=csrf, active="/ui/keys"), err.status)


async def stylesheet(request: Request) -> Response:
    return Response(pages.CSS, media_type="text/css", headers={"cache-control": "max-age=3600"})


def routes() -> list[Route]:
    return [
        Route("GET", "/ui", _signed_in(_overview)),
        Route("GET", "/ui/login", login_form),
        Route("POST", "/ui/login", login),
        Route("POST", "/ui/logout", _signed_in(_logout, post=True)),
        Route("GET", "/ui/usage", _signed_in(_usage)),
        Route("GET", "/ui/limits", _signed_in(_limits)),
        Route("GET", "/ui/requests", _signed_in(_requests)),
        Route("GET", "/ui/keys", _signed_in(_keys)),
        Route("POST", "/ui/keys", _signed_in(_create_key, post=True)),
        Route("POST", "/ui/keys/{key_id}/rotate", _signed_in(_rotate_key, post=True)),
        Route("POST", "/ui/keys/{key_id}/revoke", _signed_in(_revoke_key, post=True)),
        Route("GET", "/ui/ui.css", stylesheet),
    ]
