"""Who is calling: the virtual key from ``Authorization: Bearer`` or ``x-api-key``.

The server never accepts provider keys from clients; it authenticates llmrelay virtual keys (and
the master key, which is also allowed to call models). Without any key configured the server runs
open, for local development; then every caller is the anonymous principal.

A key's scopes (:mod:`llmrelay.keys.scopes`) are checked here: its source networks and routes on
every call, the admin scopes on the admin API (where a key with ``admin`` stands in for the master
key). Secrets are compared in constant time (``hmac.compare_digest``) here and in
:mod:`llmrelay.keys.lifecycle`; virtual keys are found by the SHA-256 of the secret, so a lookup
leaks nothing about a secret's characters either.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmrelay.config import Secret
from llmrelay.errors import AuthenticationError, NotFound, PermissionDenied
from llmrelay.keys import KeyService, VirtualKey
from llmrelay.keys.scopes import Network, capped, check_address, check_admin, check_route, networks
from llmrelay.routing.patterns import ModelNames, allows, is_pattern
from llmrelay.server.jwt_auth import JwtVerifier, looks_like_jwt


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as the pipeline sees it: an id (never the secret) and what it may use."""

    id: str
    models: tuple[str, ...] = ()
    tier: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    is_admin: bool = False
    routes: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    max_tokens: int | None = None

    def max_tokens_for(self, asked: int | None) -> int | None:
        """The ``max_tokens`` this caller's request runs with (403 above the key's cap)."""
        return capped(asked, self.max_tokens)

    def usable(self, names: ModelNames) -> list[str]:
        """The configured names (aliases and patterns) this caller may use, in config order, then
        the exact names the key lists that only a pattern serves."""
        if not self.models:
            return list(names.names)
        mine = [n for n in names.names if allows(self.models, n)]
        listed = set(mine)
        return mine + [m for m in self.models if m not in listed and not is_pattern(m) and m in names]

    def check_model(self, name: str, names: ModelNames) -> None:
        """404 for a model that does not exist, 403 for one this key may not use; either names
        only the models this key may use (a restricted key never learns the other aliases).
        A key's entries may be patterns (``openai/*``), matched against the requested name."""
        if name not in names:
            mine = ", ".join(self.usable(names)) or "none"
            raise NotFound(
                f"The model `{name}` does not exist. Models this key may use: {mine}",
                code="model_not_found",
                param="model",
            )
        if not allows(self.models, name):
            mine = ", ".join(self.usable(names)) or "none"
            raise PermissionDenied(
                f"this key may not use model `{name}`. Models this key may use: {mine}",
                code="model_not_allowed",
                param="model",
            )


ANONYMOUS = Principal(id="anonymous")
MASTER = Principal(id="master", is_admin=True)


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key") or None


class Authenticator:
    def __init__(
        self,
        keys: KeyService,
        *,
        master_key: Secret | None,
        required: bool,
        jwt: JwtVerifier | None = None,
    ) -> None:
        self._keys = keys
        self._master = master_key.reveal().encode() if master_key else None
        self._required = required
        self._jwt = jwt

    async def principal(
        self, headers: Mapping[str, str], *, client: str | None, route: str | None
    ) -> Principal:
        """The caller of ``route`` from ``client`` (an IP address), scopes checked (``route``
        ``None``: a route every key may call, such as its own ``/v1/key/info``)."""
        presented = presented_key(headers)
        if presented is None:
            if self._required:
                raise AuthenticationError(
                    "missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
                )
            return ANONYMOUS
        if self._master is not None and hmac.compare_digest(presented.encode(), self._master):
            return MASTER
        if not self._required:
            return ANONYMOUS
        if self._jwt is not None and looks_like_jwt(presented):
            return await self._jwt.principal(presented)
        principal = _principal(await self._keys.authenticate(presented))
        check_address(principal.networks, client)
        if route is not None:
            check_route(principal.routes, "/v1/models" if route.startswith("/v1/models") else route)
        return principal

    async def admin(self, headers: Mapping[str, str], *, client: str | None, write: bool) -> str:
        """Who may use the admin API (``write``: a route that changes something): the master key,
        or a virtual key with the ``admin`` scope (``admin:read`` for reads). Returns the actor
        the audit log names. Without a master key, only admin-scoped keys get in."""
        presented = presented_key(headers)
        if presented is None:
            if self._master is None:
                raise PermissionDenied(
                    "the admin API is disabled: set server.master_key, or use a key with the admin scope"
                )
            raise AuthenticationError("the admin API needs the master key or a key with the admin scope")
        if self._master is not None and hmac.compare_digest(presented.encode(), self._master):
            return MASTER.id
        key = await self._keys.authenticate(presented)
        check_address(networks(key.ips), client)
        check_admin(key.scopes, write=write)
        return key.id


def _principal(key: VirtualKey) -> Principal:
    return Principal(
        id=key.id,
        models=tuple(key.models),
        tier=key.tier,
        metadata=dict(key.metadata),
        routes=key.routes,
        networks=networks(key.ips) if key.ips else (),
        max_tokens=key.max_tokens,
    )
