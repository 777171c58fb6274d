"""Reading request bodies with a hard size cap and a deadline, before any decoding.

The cap is enforced twice: on ``Content-Length`` up front (cheap rejection without reading), and
while reading (chunked uploads and lying headers). A body over the cap raises
:class:`PayloadTooLarge` and is never held in memory whole. The whole body must arrive within
``timeout`` seconds (``server.body_timeout``): a client trickling its body a byte at a time cannot
keep a request, its buffers and its connection open for long; it gets a 408. A client that goes
away mid-body ends the request as ``client_closed`` (499 in the access log; nobody reads the
answer), not as an unhandled error.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request

from llmrelay.config import ServerConfig
from llmrelay.errors import InvalidRequest, PayloadTooLarge
from llmrelay.server.disconnect import CLIENT_CLOSED


async def read_body(request: Request, server: ServerConfig) -> bytes:
    """The whole body, within ``server.max_body_bytes`` and ``server.body_timeout``."""
    cap, timeout = server.max_body_bytes, server.body_timeout
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, cap)
    except ClientDisconnect:
        raise InvalidRequest(
            "the client closed the connection before its body arrived",
            status=CLIENT_CLOSED,
            code="client_closed",
        ) from None
    except TimeoutError:
        raise InvalidRequest(
            f"the request body did not arrive within {timeout:g}s (server.body_timeout)",
            status=408,
            code="request_timeout",
        ) from None


async def _read(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("invalid Content-Length header") from None
        if size > cap:
            raise _too_large(cap)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise _too_large(cap)
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    return body


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body exceeds the {cap}-byte limit (server.max_body_bytes)",
        code="request_too_large",
    )
