"""``KeyService``: create, rotate, revoke and authenticate virtual keys.

Hot path: :meth:`authenticate` answers from a small in-process LRU cache (``cache_ttl`` seconds on
the injected clock, see :mod:`llmrelay.keys.auth_cache`) and only asks the store on a miss, so a
busy key costs one dict lookup per request. The trade-off: a key revoked through *another* replica
(or the CLI) keeps working here for at most ``cache_ttl`` seconds (5 by default; the CLI's
``keys revoke`` help says so); revocation through this process is immediate, even for a lookup
that was reading the store at that moment. Static keys from config are hashed once at start and
never stored.

Every change is appended to the audit log (:mod:`llmrelay.audit`) with the actor the caller
names (``master``, an admin key's id, ``cli:<user>``).

Rotate and revoke are read, decide (:mod:`llmrelay.keys.lifecycle`), compare-and-set: when two
race, the one that loses reads the winner's record and decides again, so a revocation is never
lost to a concurrent rotation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Mapping, Sequence

from llmrelay.audit import AuditLog, MemoryAuditLog, audit_log_for
from llmrelay.clock import Clock
from llmrelay.config import Config, StaticKey
from llmrelay.errors import AuthenticationError, ConfigError, Conflict, InvalidRequest, NotFound
from llmrelay.keys.auth_cache import AuthCache
from llmrelay.keys.lifecycle import INVALID, check, revoked, rotated
from llmrelay.keys.model import VirtualKey, display_prefix, hash_secret, model_names, new_secret
from llmrelay.keys.scopes import checked_ips, checked_routes, checked_scopes
from llmrelay.keys.store import KeyStore, MemoryKeyStore, SqliteKeyStore
from llmrelay.stores.postgres import is_postgres
from llmrelay.stores.sqlite import sqlite_path

# A rotate or revoke that loses a compare-and-set reads again; losing this often in a row means
# the key is being hammered by writers, and the caller should hear so rather than wait.
_ATTEMPTS = 8


class KeyService:
    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        *,
        static: Sequence[StaticKey] = (),
        tiers: Collection[str] | None = None,
        cache_ttl: float = 5.0,
        cache_size: int = 10_000,
        audit: AuditLog | None = None,
    ) -> None:
        self._store = store
        self.audit: AuditLog = audit or MemoryAuditLog()
        self._clock = clock
        self._tiers = tiers
        self._cache = AuthCache(ttl=cache_ttl, size=cache_size)
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
        elif is_postgres(url):
            from llmrelay.keys.postgres_store import PostgresKeyStore

            store = PostgresKeyStore(url)
        else:
            raise ConfigError(
                f"virtual keys cannot be stored at {url.partition(':')[0]}:// (use sqlite or postgresql)"
            )
        return cls(store, clock, static=config.keys, tiers=frozenset(config.tiers), audit=audit_log_for(url))

    async def open(self) -> None:
        await self._store.open()
        try:
            await self.audit.open()
        except BaseException:
            await self._store.aclose()
            raise

    async def aclose(self) -> None:
        try:
            await self.audit.aclose()
        finally:
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
        check(key, digest, now=self._clock.wall())
        return key

    async def _lookup(self, digest: str) -> VirtualKey:
        now = self._clock.now()
        cached = self._cache.get(digest, now=now)
        if cached is not None:
            return cached
        generation = self._cache.generation
        key = await self._store.by_hash(digest)
        if key is None:
            raise AuthenticationError(INVALID)
        self._cache.put(digest, key, now=now, generation=generation)
        return key

    async def create(
        self,
        *,
        name: str | None = None,
        models: Sequence[str] = (),
        tier: str | None = None,
        metadata: Mapping[str, str] | None = None,
        expires_at: float | None = None,
        scopes: Sequence[str] = (),
        routes: Sequence[str] = (),
        ips: Sequence[str] = (),
        max_tokens: int | None = None,
        actor: str = "unknown",
    ) -> tuple[str, VirtualKey]:
        """A new key; the secret is returned here and never again. Model names are trimmed;
        ``expires_at`` must be in the future (a key born expired is a mistake, not a key); scopes,
        routes and networks must be known and well formed (:mod:`llmrelay.keys.scopes`)."""
        now = self._clock.wall()
        if expires_at is not None and not expires_at > now:
            raise InvalidRequest("expires_at must be in the future", param="expires_at")
        if tier is not None and self._tiers is not None and tier not in self._tiers:
            known = ", ".join(sorted(self._tiers)) or "none configured"
            raise InvalidRequest(f"unknown tier {tier!r} (known: {known})", param="tier")
        if max_tokens is not None and max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1", param="max_tokens")
        secret = new_secret()
        key = VirtualKey(
            id="key_" + secrets.token_hex(8),
            hash=hash_secret(secret),
            display=display_prefix(secret),
            name=name,
            models=model_names(models),
            tier=tier,
            metadata=dict(metadata or {}),
            scopes=checked_scopes(scopes),
            routes=checked_routes(routes),
            ips=checked_ips(ips),
            max_tokens=max_tokens,
            created_at=now,
            expires_at=expires_at,
        )
        await self._store.insert(key)
        details = {
            k: v for k, v in key.public().items() if k not in ("id", "display", "created_at", "revoked_at")
        }
        await self._audit(actor, "key.create", key.id, details)
        return secret, key

    async def _audit(self, actor: str, action: str, key_id: str, details: dict[str, object]) -> None:
        await self.audit.record(
            at=self._clock.wall(), actor=actor, action=action, target=key_id, details=details
        )

    async def list(self) -> list[VirtualKey]:
        return await self._store.list()

    async def get(self, key_id: str) -> VirtualKey | None:
        return await self._store.get(key_id)

    async def rotate(
        self, key_id: str, *, grace_seconds: float, actor: str = "unknown"
    ) -> tuple[str, VirtualKey]:
        """A new secret for the key; the current one stays valid for ``grace_seconds``.
        :class:`Conflict` (``key_revoked`` / ``key_expired``) for a key whose secret could never work."""
        secret = new_secret()
        key = await self._update(
            key_id, lambda k: rotated(k, secret, now=self._clock.wall(), grace_seconds=grace_seconds)
        )
        await self._audit(actor, "key.rotate", key_id, {"grace_seconds": grace_seconds})
        return secret, key

    async def revoke(self, key_id: str, *, actor: str = "unknown") -> VirtualKey:
        """Revoke the key (again is fine: the first revocation time stays)."""
        key = await self._update(key_id, lambda k: revoked(k, now=self._clock.wall()))
        await self._audit(actor, "key.revoke", key_id, {})
        return key

    async def _update(self, key_id: str, change: Callable[[VirtualKey], VirtualKey]) -> VirtualKey:
        """Read, change, compare-and-set; on a lost race read again and decide again."""
        try:
            for _ in range(_ATTEMPTS):
                key = await self._store.get(key_id)
                if key is None:
                    raise NotFound(f"no key with id {key_id}", param="key_id")
                changed = change(key)
                if changed is key:
                    return key
                stored = await self._store.compare_and_set(key, changed)
                if stored is not None:
                    return stored
        finally:
            # Even without a write of ours: the store may hold a change made elsewhere (the CLI
            # revoked it) that this process should stop missing now.
            self._cache.forget(key_id)
        raise Conflict(f"key {key_id} kept changing during this update; try again", code="key_busy")


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
        scopes=tuple(key.scopes),
        routes=tuple(key.routes),
        ips=tuple(key.ips),
        max_tokens=key.max_tokens,
        created_at=clock.wall(),
        expires_at=key.expires_at,
    )
