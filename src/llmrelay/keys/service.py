"""``KeyService``: create, rotate, revoke and authenticate virtual keys.

Hot path: :meth:`authenticate` answers from a small in-process cache (``cache_ttl`` seconds on the
injected clock) and only asks the store on a miss, so a busy key costs one dict lookup per request.
The trade-off: a key revoked through *another* replica (or the CLI) keeps working here for at most
``cache_ttl`` seconds; revocation through this process is immediate. Static keys from config are
hashed once at start and never stored.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping, Sequence

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import Config, StaticKey
from llmrelay.errors import AuthenticationError, ConfigError, NotFound
from llmrelay.keys.model import VirtualKey, display_prefix, hash_secret, new_secret
from llmrelay.keys.store import KeyStore, MemoryKeyStore, SqliteKeyStore
from llmrelay.stores.sqlite import sqlite_path

_INVALID = "invalid API key"


class KeyService:
    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        *,
        static: Sequence[StaticKey] = (),
        cache_ttl: float = 5.0,
        cache_size: int = 10_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._cache: dict[str, tuple[VirtualKey, float]] = {}
        self._static = {
            hash_secret(k.key.reveal()): _static_record(i, k, clock) for i, k in enumerate(static)
        }

    @classmethod
    def for_config(cls, config: Config, *, clock: Clock) -> KeyService:
        url = config.state.url or "memory://"
        store: KeyStore
        if url.startswith("sqlite:"):
            store = SqliteKeyStore(sqlite_path(url))
        elif url.startswith("memory:"):
            store = MemoryKeyStore()
        else:
            raise ConfigError(f"virtual keys cannot be stored at {url.partition(':')[0]}:// yet (use sqlite)")
        return cls(store, clock, static=config.keys)

    async def open(self) -> None:
        await self._store.open()

    async def aclose(self) -> None:
        await self._store.aclose()

    async def ping(self) -> bool:
        try:
            return await self._store.ping()
        except Exception:  # readiness reports any store failure as "not ready"
            return False

    async def authenticate(self, secret: str) -> VirtualKey:
        digest = hash_secret(secret)
        key = self._static.get(digest)
        if key is None:
            key = await self._lookup(digest)
        self._check(key, digest)
        return key

    async def _lookup(self, digest: str) -> VirtualKey:
        now = self._clock.now()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < self._cache_ttl:
            return cached[0]
        key = await self._store.by_hash(digest)
        if key is None:
            raise AuthenticationError(_INVALID)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[digest] = (key, now)
        return key

    def _check(self, key: VirtualKey, digest: str) -> None:
        now = self._clock.wall()
        if key.revoked_at is not None:
            raise AuthenticationError("this API key has been revoked")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationError("this API key has expired")
        if hmac.compare_digest(key.hash, digest):
            return
        previous = key.previous_hash or ""
        if hmac.compare_digest(previous, digest) and key.grace_until is not None and now < key.grace_until:
            return
        if hmac.compare_digest(previous, digest):
            raise AuthenticationError("this API key was rotated and its grace period has ended")
        raise AuthenticationError(_INVALID)

    async def create(
        self,
        *,
        name: str | None = None,
        models: Sequence[str] = (),
        tier: str | None = None,
        metadata: Mapping[str, str] | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, VirtualKey]:
        """A new key; the secret is returned here and never again."""
        secret = new_secret()
        key = VirtualKey(
            id="key_" + secrets.token_hex(8),
            hash=hash_secret(secret),
            display=display_prefix(secret),
            name=name,
            models=tuple(models),
            tier=tier,
            metadata=dict(metadata or {}),
            created_at=self._clock.wall(),
            expires_at=expires_at,
        )
        await self._store.put(key)
        return secret, key

    async def list(self) -> list[VirtualKey]:
        return await self._store.list()

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._store.get(key_id)

    async def rotate(self, key_id: str, *, grace_seconds: float) -> tuple[str, VirtualKey]:
        """A new secret for the key; the current one stays valid for ``grace_seconds``."""
        key = await self._require(key_id)
        secret = new_secret()
        rotated = msgspec.structs.replace(
            key,
            hash=hash_secret(secret),
            display=display_prefix(secret),
            previous_hash=key.hash,
            grace_until=self._clock.wall() + grace_seconds,
        )
        await self._store.put(rotated)
        self._forget(key_id)
        return secret, rotated

    async def revoke(self, key_id: str) -> VirtualKey:
        key = await self._require(key_id)
        revoked = msgspec.structs.replace(key, revoked_at=self._clock.wall())
        await self._store.put(revoked)
        self._forget(key_id)
        return revoked

    async def _require(self, key_id: str) -> VirtualKey:
        key = await self._store.get(key_id)
        if key is None:
            raise NotFound(f"no key with id {key_id}", param="key_id")
        return key

    def _forget(self, key_id: str) -> None:
        for digest in [d for d, (k, _) in self._cache.items() if k.id == key_id]:
            del self._cache[digest]


def _static_record(index: int, key: StaticKey, clock: Clock) -> VirtualKey:
    secret = key.key.reveal()
    return VirtualKey(
        id=f"static_{key.name or index}",
        hash=hash_secret(secret),
        display=display_prefix(secret),
        name=key.name,
        models=tuple(key.models),
        tier=key.tier,
        metadata=dict(key.metadata),
        created_at=clock.wall(),
        expires_at=key.expires_at,
    )
