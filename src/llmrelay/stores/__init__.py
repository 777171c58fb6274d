"""State behind small protocols (see docs/architecture.md); backends chosen by URL and imported lazily.

Every :func:`open_kv` call returns an independent store for one ``namespace``: a separate instance
in memory, a separate table in SQLite, a separate key prefix in Redis. Caps (``max_entries``,
``max_bytes``) apply per namespace; each backend's docstring says how it enforces them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from llmrelay.clock import Clock
from llmrelay.errors import ConfigError
from llmrelay.stores.base import KV, StoreFull
from llmrelay.stores.rates import RateLimits

if TYPE_CHECKING:
    from llmrelay.config import RedisConfig, StateConfig

__all__ = ["KV", "RateLimits", "StoreFull", "open_kv", "open_rate_limits", "open_state_kv"]

_NAMESPACE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def open_state_kv(
    state: StateConfig,
    clock: Clock,
    *,
    namespace: str,
    max_entries: int = 100_000,
    max_bytes: int = 64 * 1024 * 1024,
) -> KV:
    """A namespace of the deployment's shared records (idempotency, stored responses, dashboard
    sessions, alert leases): in Redis when ``state.redis`` is set, so every replica sees the same
    records; else in the SQLite state file (shared by the workers of one host); else in this
    process's memory (PostgreSQL holds no KV records, and the library may run without state)."""
    if state.redis is not None:
        return open_kv(state.redis.url.reveal(), clock, namespace=namespace, timeout=state.redis.timeout)
    from llmrelay.stores.postgres import is_postgres

    url = "memory://" if state.url is None or is_postgres(state.url) else state.url
    return open_kv(url, clock, namespace=namespace, max_entries=max_entries, max_bytes=max_bytes)


def open_kv(
    url: str,
    clock: Clock,
    *,
    namespace: str = "default",
    max_entries: int = 100_000,
    max_bytes: int = 64 * 1024 * 1024,
    timeout: float | None = None,
) -> KV:
    """``memory://``, ``sqlite:///path/to.db`` or ``redis://host:port/db``, one namespace of it
    (``timeout``: seconds Redis has to connect and to answer each command)."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ConfigError(f"invalid state namespace {namespace!r} (lowercase letters, digits, _)")
    scheme = url.partition("://")[0]
    if scheme == "memory":
        from llmrelay.stores.memory import MemoryKV

        return MemoryKV(clock, namespace=namespace, max_entries=max_entries, max_bytes=max_bytes)
    if scheme == "sqlite":
        from llmrelay.stores.sqlite import SqliteKV, sqlite_path

        return SqliteKV(sqlite_path(url), clock, namespace=namespace, max_entries=max_entries)
    if scheme in ("redis", "rediss"):
        from llmrelay.stores.redis import RedisKV

        return RedisKV(url, prefix=f"llmrelay:{namespace}:", timeout=timeout)
    raise ConfigError(f"unsupported state url scheme {scheme!r} (memory, sqlite, redis)")


def open_rate_limits(redis: RedisConfig | None, clock: Clock) -> RateLimits:
    """Memory (one process) unless ``state.redis`` is configured (every replica shares it)."""
    if redis is None:
        from llmrelay.stores.rates_memory import MemoryRateLimits

        return MemoryRateLimits(clock)
    from llmrelay.stores.rates_redis import RedisRateLimits

    return RedisRateLimits(redis.url.reveal(), clock, on_error=redis.on_error, timeout=redis.timeout)
