"""Cache config: per alias (``models[].cache``) and for the cache's store (``state.cache``).

Defined here, beside the cache, and embedded in :mod:`llmrelay.config`; msgspec checks the bounds
while decoding, so an error names its path (``$.models[0].cache.ttl``).

``scope`` decides who shares entries: ``key`` (the default) keeps every virtual key's answers to
itself, ``team`` shares them within a key's ``team`` (its metadata or JWT claim; a caller without
a team falls back to its own key), ``shared`` shares them between every caller of the alias (for
answers that do not depend on who asks, such as public FAQ bots or embeddings).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Scope = Literal["key", "team", "shared"]
CheckName = Literal[
    "numbers", "dates", "units", "entities", "negation", "antonyms", "question", "roles", "coordination"
]
ALL_CHECKS: tuple[CheckName, ...] = (
    "numbers",
    "dates",
    "units",
    "entities",
    "negation",
    "antonyms",
    "question",
    "roles",
    "coordination",
)


class SemanticConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Serve an answer to a question that means the same (``models[].cache.semantic``).

    Only the final user message is compared by meaning; the alias, every parameter and the whole
    conversation before it must match exactly. A neighbour at cosine ``threshold`` or above is
    served only when every verifier check passes (:mod:`llmrelay.cache.verify`); ``hook``
    (``module:function``, ``(cached, asked) -> reason | None``) adds a check of your own. The
    defaults come from ``bench/semcache_eval.py`` (README: "Semantic cache").
    """

    threshold: Annotated[float, Meta(gt=0, le=1)] = 0.95
    checks: list[CheckName] = msgspec.field(default_factory=lambda: list(ALL_CHECKS))
    hook: str | None = None
    embedder: Literal["minilm-int8"] = "minilm-int8"
    max_entries: Annotated[int, Meta(ge=1)] = 100_000


class CacheConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Cache this alias's answers (chat and embeddings).

    ``ttl``: seconds an entry is served. ``stale_if_error``: seconds past ``ttl`` an entry is kept
    to answer (marked ``stale``) when every target failed; ``0`` (the default) never serves one.
    """

    ttl: Annotated[float, Meta(gt=0)] = 3600.0
    scope: Scope = "key"
    stale_if_error: Annotated[float, Meta(ge=0)] = 0.0
    semantic: SemanticConfig | None = None


class CacheStoreConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where cached answers live: ``memory://`` (the default: per process, true LRU under both
    caps), ``sqlite:///path.db`` (shared by a server's workers; bounded by ``max_entries``, the
    soonest to expire going first) or ``redis://host:port/db`` (shared by every replica; bounded
    by Redis's ``maxmemory``, so give the cache a Redis of its own with ``allkeys-lru``).
    ``namespace`` separates deployments sharing one store. It is never the idempotency store's
    namespace, so cache churn cannot evict an idempotency record.
    """

    url: str | None = None
    namespace: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = "cache"
    max_entries: Annotated[int, Meta(ge=1)] = 100_000
    max_bytes: Annotated[int, Meta(ge=1024)] = 256 * 1024 * 1024
