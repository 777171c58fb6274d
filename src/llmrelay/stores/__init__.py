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
    from llmrelay.config import RedisConfig

__all__ = ["KV", "RateLimits", "StoreFull", "kv_url", "open_kv", "open_rate_limits"]

_NAMESPACE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def kv_url(state_url: str | None) -> str:
    """Where KV namespaces live for a state URL: PostgreSQL holds no KV records, so with a
    ``postgresql://`` state (and with none) they stay in each process's memory."""
    from llmrelay.stores.postgres import is_postgres

    return "memory://" if state_url is None or is_postgres(state_url) else state_url


def open_kv(
    url: str,
    clock: Clock,
    *,
    namespace: str = "default",
    max_entries: int = 100_000,
    max_bytes: int = 64 * 1024 * 1024,
) -> KV:
    """``memory://``, ``sqlite:///path/to.db`` or ``redis://host:port/db``, one namespace of it."""
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

        return RedisKV(url, prefix=f"llmrelay:{namespace}:")
    raise ConfigError(f"unsupported state url scheme {scheme!r} (memory, sqlite, redis)")


def open_rate_limits(redis: RedisConfig | None, clock: Clock) -> RateLimits:
    """Memory (one process) unless ``state.redis`` is configured (every replica shares it)."""
    if redis is None:
        from llmrelay.stores.rates_memory import MemoryRateLimits

        return MemoryRateLimits(clock)
    from llmrelay.stores.rates_redis import RedisRateLimits

    return RedisRateLimits(redis.url.reveal(), clock, on_error=redis.on_error, timeout=redis.timeout)
