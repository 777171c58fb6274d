"""``GET /admin/usage``: requests, tokens and cost from the ledger, for the master key.

Query: ``group_by`` (``key``, ``user``, ``team``, ``model``, ``alias``, ``target``, ``day`` or
``tag:<name>``; none: the total only), ``from`` / ``to`` (epoch seconds or ISO date / date-time,
UTC; ``to`` exclusive) and ``format`` (``json``, the default, or ``csv``). Rows buffered by this
process's ledger writer are written first (for up to 2 s), so a report includes the requests this
replica just answered; other replicas' rows arrive within their flush interval.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.errors import InvalidRequest, NotFound, RelayError
from llmrelay.ledger import UsageQuery
from llmrelay.ledger.report import parse_time, report, to_csv
from llmrelay.server.errors import error_response
from llmrelay.server.handler import ServerState, client_host
from llmrelay.wire.openai_errors import encode_error


async def usage(request: Request) -> Response:
    state: ServerState = request.app.state.llmrelay
    try:
        await state.auth.admin(request.headers, client=client_host(request), write=False)
        if state.ledger is None:
            raise NotFound("the usage ledger is off (`ledger.enabled: false`)", code="ledger_disabled")
        params = request.query_params
        form = params.get("format", "json")
        if form not in ("json", "csv"):
            raise InvalidRequest("`format` must be json or csv", param="format")
        query = UsageQuery.parse(
            params.get("group_by"), parse_time(params.get("from"), "from"), parse_time(params.get("to"), "to")
        )
        await state.ledger.flush(timeout=2.0)
        try:
            payload = await report(state.ledger.store, query)
        except Exception as err:  # the store's own failure (unreachable, not open yet): a 503
            raise RelayError(
                f"the usage ledger cannot be read now ({type(err).__name__}); try again",
                status=503,
                code="ledger_unavailable",
            ) from err
    except RelayError as err:
        return error_response(err, encode_error, headers={})
    if form == "csv":
        return Response(to_csv(payload), media_type="text/csv; charset=utf-8")
    return Response(msgspec.json.encode(payload), media_type="application/json")
