"""Reading request bodies with a hard size cap, before any decoding.

The cap is enforced twice: on ``Content-Length`` up front (cheap rejection without reading), and
while reading (chunked uploads and lying headers). A body over the cap raises
:class:`PayloadTooLarge` and is never held in memory whole.
"""

from __future__ import annotations

from starlette.requests import Request

from llmrelay.errors import InvalidRequest, PayloadTooLarge


async def read_body(request: Request, cap: int) -> bytes:
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
