"""Dashboard sessions: a random id in the cookie, its SHA-256 in the state store (namespace ``ui``)
with the session's CSRF token, for ``ttl`` seconds. Stored hashed, so reading the store gives no
usable cookie; in the store, so every worker and replica honours a login."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from llmrelay.stores.base import KV

COOKIE = "llmrelay_ui"


def _key(session_id: str) -> str:
    return "session:" + hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, kv: KV, *, ttl: float = 8 * 3600) -> None:
        self._kv = kv
        self.ttl = ttl

    async def open(self) -> None:
        await self._kv.open()

    async def aclose(self) -> None:
        await self._kv.aclose()

    async def create(self) -> tuple[str, str]:
        """A new session: (the cookie's value, its CSRF token)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await self._kv.set(_key(session_id), csrf.encode(), ttl=self.ttl)
        return session_id, csrf

    async def csrf(self, session_id: str | None) -> str | None:
        """The CSRF token of a live session, ``None`` for no session or an unknown or expired one."""
        if not session_id or len(session_id) > 100:
            return None
        value = await self._kv.get(_key(session_id))
        return value.decode() if value is not None else None

    async def end(self, session_id: str) -> None:
        await self._kv.delete(_key(session_id))


def same(expected: str | None, given: str | None) -> bool:
    """Constant-time equality of two tokens, never true when either is missing."""
    return expected is not None and given is not None and hmac.compare_digest(expected, given)
