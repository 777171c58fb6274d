"""Canonical errors as HTTP responses in the caller's wire format.

What a client sees is decided here, once: the error's status, ``Retry-After`` when known, and the
body shaped by the route's format. No status is rewritten: an upstream rejecting the gateway's own
provider key already arrives as :class:`~llmrelay.errors.UpstreamAuthError` (502) from the codecs,
so stream error events, which do not pass through here, say the same. Messages are the canonical
ones, which never carry secrets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.responses import Response

from llmrelay.errors import RelayError

ErrorBody = Callable[[RelayError], dict[str, Any]]


def error_response(err: RelayError, body: ErrorBody, *, headers: dict[str, str]) -> Response:
    out = dict(headers)
    if err.retry_after is not None:
        out["retry-after"] = str(max(0, math.ceil(err.retry_after)))
    if err.should_retry is False:
        out["x-should-retry"] = "false"  # OpenAI's own hint; its SDK then does not retry
    status = err.status if 400 <= err.status <= 599 else 500
    return Response(
        msgspec.json.encode(body(err)),
        status_code=status,
        headers=out,
        media_type="application/json",
    )
