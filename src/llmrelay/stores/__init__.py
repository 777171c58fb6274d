"""State behind small protocols (ARCHITECTURE §7); backends chosen by URL and imported lazily."""

from __future__ import annotations

from llmrelay.clock import Clock
from llmrelay.errors import ConfigError
from llmrelay.stores.base import KV


def open_kv(url: str, clock: Clock) -> KV:
    """``memory://``, ``sqlite:///path/to.db`` or ``redis://host:port/db``."""
    scheme = url.partition("://")[0]
    if scheme == "memory":
        from llmrelay.stores.memory import MemoryKV

        return MemoryKV(clock)
    if scheme == "sqlite":
        from llmrelay.stores.sqlite import SqliteKV, sqlite_path

        return SqliteKV(sqlite_path(url), clock)
    if scheme in ("redis", "rediss"):
        from llmrelay.stores.redis import RedisKV

        return RedisKV(url)
    raise ConfigError(f"unsupported state url scheme {scheme!r} (memory, sqlite, redis)")
