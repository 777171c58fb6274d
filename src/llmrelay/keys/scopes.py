"""What a virtual key may do beyond its models: routes, source addresses, tokens per request, and
the admin API. Pure: the vocabulary, the checks of a key's fields when it is made, and the
decisions :mod:`llmrelay.server.auth` asks for on each request.

- ``scopes``: ``admin`` (the whole admin API) or ``admin:read`` (its ``GET`` routes only), so
  day-to-day administration needs no master key, which can stay in a vault. Without a scope a key
  reaches the model routes only.
- ``routes``: the model routes the key may call (:data:`MODEL_ROUTES`); empty: all of them.
  ``/v1/models`` covers ``/v1/models/{model}``, ``/v1/responses`` its ``GET`` / ``DELETE`` by id;
  ``GET /v1/key/info`` (a key reading its own limits) is open to every key.
- ``ips``: CIDRs (``10.0.0.0/8``, ``2001:db8::/32``, a bare address) the caller's address must be
  in; empty: anywhere. The address is the TCP peer's (``X-Forwarded-For`` is not trusted).
- ``max_tokens``: a cap on the answer's tokens per request. A request asking for more is refused
  (403 ``max_tokens_exceeded``); one that asks for nothing gets the cap, so no request of this key
  runs unbounded.

Each denial is a 403 with its own code, in the caller's wire shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal, TypeAlias

from llmrelay.errors import InvalidRequest, PermissionDenied

Scope: TypeAlias = Literal["admin", "admin:read"]
SCOPES: tuple[Scope, ...] = ("admin", "admin:read")
MODEL_ROUTES = (
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages/count_tokens",
    "/v1/tokens/count",
    "/v1/models",
)
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    unknown = [s for s in found if s not in SCOPES]
    if unknown:
        raise InvalidRequest(f"unknown scope {unknown[0]!r} (known: {', '.join(SCOPES)})", param="scopes")
    return found


def checked_routes(routes: Iterable[str]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(r.strip() for r in routes if r.strip()))
    unknown = [r for r in found if r not in MODEL_ROUTES]
    if unknown:
        raise InvalidRequest(
            f"unknown route {unknown[0]!r} (model routes: {', '.join(MODEL_ROUTES)})", param="routes"
        )
    return found


def checked_ips(ips: Iterable[str]) -> tuple[str, ...]:
    """CIDRs as written, each checked (host bits set are refused: ``10.0.0.1/8`` is a typo)."""
    found = tuple(dict.fromkeys(i.strip() for i in ips if i.strip()))
    networks(found)
    return found


def networks(ips: Iterable[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(i) for i in ips)
    except ValueError as err:
        raise InvalidRequest(f"not an IP network: {err}", param="ips") from None


def check_address(allowed: tuple[Network, ...], client: str | None) -> None:
    """:class:`PermissionDenied` unless ``client`` is in one of ``allowed`` (empty: anyone)."""
    if not allowed:
        return
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:
        address = None
    if address is None or not any(address in net for net in allowed):
        raise PermissionDenied("this key may not be used from this address", code="ip_not_allowed")


def check_route(routes: tuple[str, ...], route: str) -> None:
    if routes and route not in routes:
        raise PermissionDenied(
            f"this key may not call {route} (it may call: {', '.join(routes)})", code="route_not_allowed"
        )


def check_admin(scopes: tuple[str, ...], *, write: bool) -> None:
    if "admin" in scopes or ("admin:read" in scopes and not write):
        return
    need = "`admin`" if write else "`admin` or `admin:read`"
    raise PermissionDenied(f"this key lacks the {need} scope the admin API needs", code="insufficient_scope")


def capped(asked: int | None, cap: int | None) -> int | None:
    """The ``max_tokens`` a request runs with under ``cap``; :class:`PermissionDenied` above it."""
    if cap is None:
        return asked
    if asked is None:
        return cap
    if asked > cap:
        raise PermissionDenied(
            f"max_tokens {asked} is above this key's limit of {cap}",
            code="max_tokens_exceeded",
            param="max_tokens",
        )
    return asked
