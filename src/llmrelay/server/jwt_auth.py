"""Bearer JWTs signed by a configured JWKS (an OIDC provider's, or a file), as an alternative to keys.

With ``server.jwt`` set, a bearer token shaped like a JWT is verified here instead of being looked
up as a virtual key: the signing key is chosen by the token's ``kid`` from the JWKS, and the
signature, expiry, issuer and audience are all checked (PyJWT, imported only when configured).
Claims map to the caller: ``user_claim`` is the principal (``jwt:<user>``), ``team_claim`` and
``tier_claim`` fill its metadata and tier, ``models_claim`` (a list) restricts its models.

The JWKS is read at start-up and again every ``refresh`` seconds, or sooner when a token names a
``kid`` it does not hold (key rotation at the issuer), at most once per :data:`MIN_RELOAD_SECONDS`
so a flood of forged ``kid`` values cannot turn into a flood of fetches. A verified token is cached
until it expires (at most :data:`CACHE_SECONDS`), so its signature is checked once, not per request.
Every failure is a 401 that says why (expired, wrong audience, bad signature, unknown key) and
never echoes the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.request
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmrelay.config import JwtConfig
from llmrelay.errors import AuthenticationError, ConfigError

if TYPE_CHECKING:
    from llmrelay.server.auth import Principal

MIN_RELOAD_SECONDS = 30.0
CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments whose header starts like a JSON object (``eyJ`` is ``{"``)."""
    return token.startswith("eyJ") and token.count(".") == 2


class JwtVerifier:
    def __init__(self, config: JwtConfig) -> None:
        try:
            import jwt
        except ImportError as err:
            raise ConfigError("`$.server.jwt` needs PyJWT: pip install 'llmrelay[jwt]'") from err
        self._jwt = jwt
        self._config = config
        self._keys: dict[str, Any] = {}
        self._loaded_at = float("-inf")
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def load(self) -> None:
        """(Re)read the JWKS; a start-up failure is a :class:`ConfigError` naming the source."""
        source = self._config.jwks
        try:
            raw = await asyncio.to_thread(_read, source)
            keys = self._jwt.PyJWKSet.from_dict(json.loads(raw)).keys
        except Exception as err:
            raise ConfigError(f"`$.server.jwt.jwks`: cannot load a JWKS from {source}: {err}") from err
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._loaded_at = time.monotonic()

    async def principal(self, token: str) -> Principal:
        cache_key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] > now:
            self._cache.move_to_end(cache_key)
            return cached[0]
        claims = await self._verify(token)
        principal = self._principal(claims)
        self._cache[cache_key] = (principal, min(float(claims["exp"]), now + CACHE_SECONDS))
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> dict[str, Any]:
        jwt, config = self._jwt, self._config
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise AuthenticationError("invalid bearer token: not a well-formed JWT") from None
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None and self._stale(MIN_RELOAD_SECONDS):
            await self._reload_quietly()
            key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise AuthenticationError("invalid bearer token: signed by an unknown key (kid)")
        if self._stale(config.refresh):
            await self._reload_quietly()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=config.algorithms,
                audience=config.audience,
                issuer=config.issuer,
                options={"require": ["exp", "iss", "aud", config.user_claim]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("invalid bearer token: it has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("invalid bearer token: wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError("invalid bearer token: wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("invalid bearer token: bad signature") from None
        except jwt.InvalidTokenError as err:
            raise AuthenticationError(f"invalid bearer token: {type(err).__name__}") from None
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        from llmrelay.server.auth import Principal

        config = self._config
        user = str(claims[config.user_claim])
        metadata = {"user": user}
        team = claims.get(config.team_claim) if config.team_claim else None
        if isinstance(team, str):
            metadata["team"] = team
        tier = claims.get(config.tier_claim) if config.tier_claim else None
        models = claims.get(config.models_claim) if config.models_claim else None
        return Principal(
            id=f"jwt:{user}",
            models=tuple(m for m in models if isinstance(m, str)) if isinstance(models, list) else (),
            tier=tier if isinstance(tier, str) else None,
            metadata=metadata,
        )

    def _stale(self, seconds: float) -> bool:
        return time.monotonic() - self._loaded_at >= seconds

    async def _reload_quietly(self) -> None:
        """A failed reload keeps the keys already held (the issuer may be down for a moment)."""
        self._loaded_at = time.monotonic()
        try:
            await self.load()
        except ConfigError:
            return


def _read(source: str) -> str:
    if source.startswith(("https://", "http://")):
        with urllib.request.urlopen(source, timeout=5) as reply:
            return str(reply.read().decode())
    return Path(source.removeprefix("file://")).read_text(encoding="utf-8")
