"""``/healthz``: the process answers. ``/readyz``: its stores answer too (for load balancers)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmrelay.server.handler import ServerState


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: ServerState = request.app.state.llmrelay
    checks = await state.readiness()
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
