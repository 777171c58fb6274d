"""``GET /v1/key/info``: what the calling key may do, and how much of it is left right now.

The answer is a dict of sections, each owned by the feature it describes: ``key`` (who is
calling), ``limits`` (the tier's limits with each counter's remaining headroom; peeking charges
nothing) and ``budgets`` (each budget the caller counts against, with spend, reservations and
when it resets).
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.context import Context
from llmrelay.errors import RelayError
from llmrelay.server.errors import error_response
from llmrelay.server.handler import ServerState, client_host
from llmrelay.wire.openai_errors import encode_error


async def key_info(request: Request) -> Response:
    state: ServerState = request.app.state.llmrelay
    try:
        principal = await state.auth.principal(request.headers, client=client_host(request), route=None)
        ctx = Context(
            clock=state.relay.clock,
            principal=principal.id,
            user=principal.metadata.get("user"),
            team=principal.metadata.get("team"),
            tier=principal.tier,
        )
        body: dict[str, Any] = {
            "key": {
                "id": principal.id,
                "tier": principal.tier,
                "user": ctx.user,
                "team": ctx.team,
                "models": list(principal.models) or None,
            },
            "limits": await state.relay.limits_report(ctx),
            **await state.relay.budget_status(ctx),
        }
    except RelayError as err:
        return error_response(err, encode_error, headers={})
    return Response(msgspec.json.encode(body), media_type="application/json")
