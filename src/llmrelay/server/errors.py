"""Canonical errors as HTTP responses in the caller's wire format.

What a client sees is decided here, once: the status (with one gateway rule: an upstream rejecting
*our* provider credentials is a 502 for the client, whose own key was fine), ``Retry-After`` when
known, and the body shaped by the route's format. Messages are the canonical ones, which never
carry secrets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.responses import Response

from llmrelay.errors import AuthenticationError, PermissionDenied, RelayError, UpstreamError

ErrorBody = Callable[[RelayError], dict[str, Any]]


def for_client(err: RelayError) -> RelayError:
    """The error as the client should see it."""
    if err.provider is not None and isinstance(err, AuthenticationError | PermissionDenied):
        return UpstreamError(
            f"the upstream provider {err.provider} rejected llmrelay's credentials ({err.status});"
            " the gateway's provider configuration needs fixing",
            code="upstream_auth_error",
            provider=err.provider,
        )
    return err


def error_response(err: RelayError, body: ErrorBody, *, headers: dict[str, str]) -> Response:
    err = for_client(err)
    out = dict(headers)
    if err.retry_after is not None:
        out["retry-after"] = str(max(0, math.ceil(err.retry_after)))
    status = err.status if 400 <= err.status <= 599 else 500
    return Response(
        msgspec.json.encode(body(err)),
        status_code=status,
        headers=out,
        media_type="application/json",
    )
