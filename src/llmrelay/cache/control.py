"""The caller's ``Cache-Control`` request header, as the cache reads it (RFC 9111 §5.2.1).

``no-store``: neither read nor write the cache (the answer says ``bypass``); ``no-cache``: do not
serve an entry, but store the fresh answer (a refresh); ``max-age=N``: serve an entry at most ``N``
seconds old. Other directives, and malformed ones, are ignored, as the RFC asks of a cache.
"""

from __future__ import annotations

from typing import NamedTuple


class Directives(NamedTuple):
    no_store: bool = False
    no_cache: bool = False
    max_age: float | None = None


NONE = Directives()


def parse_cache_control(header: str | None) -> Directives:
    if not header:
        return NONE
    no_store = no_cache = False
    max_age: float | None = None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name == "no-store":
            no_store = True
        elif name == "no-cache":
            no_cache = True
        elif name == "max-age":
            value = value.strip().strip('"')
            if value.isdigit():
                max_age = float(value) if max_age is None else min(max_age, float(value))
    return Directives(no_store, no_cache, max_age)
