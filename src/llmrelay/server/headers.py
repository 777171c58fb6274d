"""A request's headers as a plain dict, built once per model call.

Starlette's ``Headers.get`` scans the raw header list per lookup and, for a header that is not
there, raises and catches a ``KeyError``. A model call asks for about nine headers, most of them
absent (request id, tags, trace parent, timeout, idempotency key, cache control): ~10 µs a call
that way, ~2.5 µs with one dict built from the raw list.
"""

from __future__ import annotations

from starlette.requests import Request


def header_map(request: Request) -> dict[str, str]:
    """Lower-case name to value; of a repeated header the first, as ``Headers.get`` answers."""
    found: dict[str, str] = {}
    for key, value in request.scope["headers"]:
        name = key.decode("latin-1")
        if name not in found:
            found[name] = value.decode("latin-1")
    return found
