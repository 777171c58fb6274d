"""``GET /metrics``: Prometheus exposition of the relay's metrics (all workers' with several).

The series are recorded where things happen (:mod:`llmrelay.telemetry.prometheus`); this route
only renders them. A relay built without the Prometheus backend (the library's default) has none:
404.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.errors import NotFound
from llmrelay.server.errors import error_response
from llmrelay.server.handler import ServerState
from llmrelay.wire.openai_errors import encode_error


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.llmrelay
    if state.metrics is None:
        err = NotFound("this relay has no metrics backend", code="metrics_disabled")
        return error_response(err, encode_error, headers={})
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
