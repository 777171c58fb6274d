"""``GET /v1/models`` and ``GET /v1/models/{id}``: the aliases this caller may use."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.errors import RelayError
from llmrelay.server.errors import error_response
from llmrelay.server.handler import ServerState, client_host
from llmrelay.wire.openai_errors import encode_error


def _model(alias: str) -> dict[str, object]:
    return {"id": alias, "object": "model", "created": 0, "owned_by": "llmrelay"}


async def list_models(request: Request) -> Response:
    state: ServerState = request.app.state.llmrelay
    try:
        principal = await state.auth.principal(
            request.headers, client=client_host(request), route="/v1/models"
        )
    except RelayError as err:
        return error_response(err, encode_error, headers={})
    aliases = principal.usable(state.relay.model_names)
    body = {"object": "list", "data": [_model(a) for a in aliases]}
    return Response(msgspec.json.encode(body), media_type="application/json")


async def get_model(request: Request) -> Response:
    state: ServerState = request.app.state.llmrelay
    alias = request.path_params["model"]
    try:
        principal = await state.auth.principal(
            request.headers, client=client_host(request), route="/v1/models"
        )
        principal.check_model(alias, state.relay.model_names)
    except RelayError as err:
        return error_response(err, encode_error, headers={})
    return Response(msgspec.json.encode(_model(alias)), media_type="application/json")
