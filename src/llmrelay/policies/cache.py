"""The response cache (request scope: after idempotency and the request-rate limit, before token
limits and budget; docs/architecture.md §3). A hit counts as a request but takes no tokens and no
budget, so it sits below the one and above the others.

Per alias (``models[].cache``: :class:`~llmrelay.cache.settings.CacheConfig`), for chat and
embeddings. The key (:mod:`llmrelay.cache.key`) hashes every answer-relevant field of the request
with the tenant, so tenants never see each other's entries unless the alias is ``shared``. The
caller's ``Cache-Control`` (:mod:`llmrelay.cache.control`) may refresh (``no-cache``), bypass
(``no-store``) or bound the age it accepts (``max-age``). The outcome (``hit``, ``miss``,
``stale``, ``bypass``) and the cost a hit saved go to ``ctx.stats`` for the response headers and
the access log.

* A hit returns the stored answer marked ``replayed`` (the server then bills nothing); a streamed
  request that hits gets it replayed as a proper stream (:func:`llmrelay.cache.entry.replay`).
* A miss is stored when it completed: a whole answer at once; a stream through an observer, only
  when it ended normally (never a failed, interrupted or abandoned one). Errors, ``length`` and
  ``content_filter`` answers are never stored.
* With ``stale_if_error``, an entry outlives its ``ttl`` by that many seconds and answers
  (``stale``) when the call failed upstream (5xx, 429, every target down); a caller's error is
  raised as it is.
* The store failing (Redis down) is a miss, logged and counted in :attr:`Cache.store_errors`;
  never a failed request.

Operations: every outcome and what hits saved are counted per alias, in this process
(:mod:`llmrelay.cache.stats`, ``GET /admin/cache``); :meth:`Cache.clear` makes an alias's (or every)
entry unreachable in O(1) by a new generation token hashed into the keys
(:mod:`llmrelay.cache.generations`); :meth:`Cache.store` keeps a given answer (``llmrelay cache
warm``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from llmrelay.cache.control import parse_cache_control
from llmrelay.cache.entry import Entry, decode_entry, encode_entry, replay, storable
from llmrelay.cache.generations import Generations
from llmrelay.cache.index_sync import IndexSync
from llmrelay.cache.key import exact_key, tenant
from llmrelay.cache.semantic import Probe, Semantic
from llmrelay.cache.settings import CacheConfig
from llmrelay.cache.stats import AliasStats
from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import NotFound, RelayError
from llmrelay.service import Request, Result, Service
from llmrelay.stores.base import KV
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import ChatRequest, ChatResponse, EmbeddingResponse, Usage

log = logging.getLogger("llmrelay.cache")

CostOf = Callable[[str | None, Usage], float | None]
"""USD a target (by label) charges for ``usage``; ``None`` when its price is unknown."""


@dataclass(frozen=True, slots=True)
class AliasCache:
    """One alias's cache: its name as configured, its config, its semantic half when ``semantic``
    is configured, and its counters."""

    name: str
    config: CacheConfig
    semantic: Semantic | None = None
    stats: AliasStats = field(default_factory=AliasStats)


class Cache:
    def __init__(
        self,
        kv: KV,
        clock: Clock,
        *,
        settings_for: Callable[[str], AliasCache | None],
        aliases: list[AliasCache],
        cost: CostOf,
        index_sync: IndexSync | None = None,
    ) -> None:
        self._kv = kv
        self._index_sync = index_sync
        self._clock = clock
        self._settings_for = settings_for
        self._aliases = aliases
        self._cost = cost
        self._generations = Generations(kv, clock)
        self.store_errors = 0

    def stats(self) -> dict[str, Any]:
        """Every caching alias's counters in this process (``GET /admin/cache``), and on Redis
        how this replica's semantic indexes follow the others' (``semantic_sharing``)."""
        stats: dict[str, Any] = {
            "store_errors": self.store_errors,
            "aliases": {alias.name: alias.stats.snapshot() for alias in self._aliases},
        }
        if self._index_sync is not None:
            sync = self._index_sync
            stats["semantic_sharing"] = {"adopted": sync.adopted, "following": not sync.down}
        return stats

    async def clear(self, model: str | None = None) -> str | None:
        """Make every entry of ``model``'s alias (``None``: of every alias) unreachable; returns the
        alias cleared. A store error propagates: the caller must know the clear did not happen."""
        cleared = None if model is None else self.alias(model)
        await self._generations.clear(None if cleared is None else cleared.name)
        for alias in self._aliases if cleared is None else [cleared]:
            if alias.semantic is not None:
                alias.semantic.clear()
        return None if cleared is None else cleared.name

    async def store(self, request: ChatRequest, ctx: Context, answer: ChatResponse) -> bool:
        """Keep ``answer`` for ``request`` as a miss would (``llmrelay cache warm``); ``False``
        when the store refused it."""
        alias = self.alias(request.model)
        probe = None
        scope = await self._scope(alias, ctx)
        if alias.semantic is not None:
            probe = await self._probe(alias.semantic, request, scope)
        store = _Store(self, exact_key(request, scope), alias.config, alias.semantic, probe)
        return await store.put(answer)

    def covers(self, model: str) -> bool:
        """Whether ``model``'s alias caches (the tenant limits then take its tokens after this)."""
        return self._settings_for(model) is not None

    def alias(self, model: str) -> AliasCache:
        """The cache of the alias serving ``model`` (a pattern's name too), else ``NotFound``."""
        alias = self._settings_for(model)
        if alias is None:
            raise NotFound(f"the model `{model}` has no cache configured", param="model")
        return alias

    async def _scope(self, alias: AliasCache, ctx: Context) -> str:
        """Who shares entries, within the alias's current generation (a clear starts a new one)."""
        return f"{await self._generations.of(alias.name)}|{tenant(ctx, alias.config.scope)}"

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        alias = self._settings_for(request.model)
        if alias is None:
            return await call_next(request, ctx)
        settings = alias.config
        directives = parse_cache_control(ctx.cache_control)
        stats = alias.stats
        if directives.no_store:
            _note(ctx, "bypass")
            stats.count("bypass")
            return await call_next(request, ctx)
        scope = await self._scope(alias, ctx)
        key = exact_key(request, scope)
        entry = None if directives.no_cache else await self._get(key)
        fresh = settings.ttl if directives.max_age is None else min(settings.ttl, directives.max_age)
        age = 0.0
        if entry is not None:
            age = self._clock.wall() - entry.stored_at
            if age < fresh:
                return self._serve(entry, request, ctx, stats, "hit")
        probe = None
        if alias.semantic is not None:
            probe = await self._probe(alias.semantic, request, scope)
            if probe is not None and not directives.no_cache:
                similar = await self._similar(alias.semantic, probe, request, ctx, stats, fresh)
                if similar is not None:
                    return similar
        try:
            result = await call_next(request, ctx)
        except RelayError as err:
            if entry is not None and age < settings.ttl + settings.stale_if_error and _upstream_failed(err):
                log.warning("serving a stale cached answer: %s", err.code)
                return self._serve(entry, request, ctx, stats, "stale")
            stats.count("miss")
            raise
        _note(ctx, "miss")
        stats.count("miss")
        store = _Store(self, key, settings, alias.semantic, probe)
        if isinstance(result, ChatStream):
            result.observe(_Capture(store))
        elif not isinstance(result, ChatResponse) or storable(result):
            await store.put(result)
        return result

    async def _probe(self, semantic: Semantic, request: Request, scope: str) -> Probe | None:
        probe = semantic.probe(request, scope)
        if probe is None:
            return None
        try:
            await semantic.embed(probe)
        except Exception:
            log.warning("the embedder failed; the semantic cache is skipped for this call", exc_info=True)
            return None
        return probe

    async def _similar(
        self,
        semantic: Semantic,
        probe: Probe,
        request: Request,
        ctx: Context,
        stats: AliasStats,
        fresh: float,
    ) -> Result | None:
        for candidate in semantic.candidates(probe):
            entry = await self._get(candidate.key)
            if entry is None:
                semantic.gone(candidate)
                continue
            if self._clock.wall() - entry.stored_at >= fresh:
                continue
            semantic.served(candidate)
            outcome = f"semantic-hit; similarity={candidate.similarity:.2f}"
            return self._serve(entry, request, ctx, stats, outcome)
        return None

    def _serve(self, entry: Entry, request: Request, ctx: Context, stats: AliasStats, outcome: str) -> Result:
        answer: ChatResponse | EmbeddingResponse | None = entry.embedding or entry.response
        if answer is None or isinstance(answer, ChatResponse) != isinstance(request, ChatRequest):
            raise RuntimeError("a cache entry of the wrong kind")  # the key hashes the request type
        cost = self._cost(answer.target, answer.usage)
        stats.count(outcome.partition(";")[0].replace("-", "_"))
        stats.saved(answer.usage.total_tokens, cost)
        if ctx.stats is not None:
            ctx.stats.cache = outcome
            ctx.stats.cost_saved = cost
        if isinstance(answer, ChatResponse) and isinstance(request, ChatRequest) and request.stream:
            return replay(answer)
        return msgspec.structs.replace(answer, replayed=True)

    async def _get(self, key: str) -> Entry | None:
        try:
            raw = await self._kv.get(key)
            return None if raw is None else decode_entry(raw)
        except msgspec.DecodeError:
            log.warning("an unreadable cache entry was ignored")
            return None
        except Exception:
            self.store_errors += 1
            log.warning("cache store unavailable on read; treated as a miss", exc_info=True)
            return None

    async def _put(
        self, key: str, answer: ChatResponse | EmbeddingResponse, ttl: float, probe: Probe | None = None
    ) -> bool:
        answer = msgspec.structs.replace(answer, replayed=False)
        entry = Entry(
            stored_at=self._clock.wall(),
            response=answer if isinstance(answer, ChatResponse) else None,
            embedding=answer if isinstance(answer, EmbeddingResponse) else None,
            prompt=probe.prompt if probe is not None else None,
            prefix=probe.partition if probe is not None else None,
        )
        try:
            await self._kv.set(key, encode_entry(entry), ttl=ttl)
        except Exception:
            self.store_errors += 1
            log.warning("cache store unavailable on write; the answer was not cached", exc_info=True)
            return False
        return True


class _Store:
    """Keeps one miss: its answer under the exact key, then (semantic) its question in the index."""

    def __init__(
        self, cache: Cache, key: str, settings: CacheConfig, semantic: Semantic | None, probe: Probe | None
    ) -> None:
        self._cache = cache
        self._key = key
        self._ttl = settings.ttl
        self._keep_for = settings.ttl + settings.stale_if_error
        self._semantic = semantic
        self._probe = probe

    async def put(self, answer: ChatResponse | EmbeddingResponse) -> bool:
        stored = await self._cache._put(self._key, answer, self._keep_for, self._probe)
        if stored and self._semantic is not None and self._probe is not None:
            self._semantic.remember(self._probe, self._key, self._cache._clock.wall() + self._ttl)
        return stored


class _Capture(StreamObserver):
    """Stores a streamed miss once it has ended normally (its aggregate, ``stream.final()``)."""

    def __init__(self, store: _Store) -> None:
        self._store = store

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if error is not None or not stream.done:
            return
        response = stream.final()
        if storable(response):
            await self._store.put(response)


def _note(ctx: Context, outcome: str) -> None:
    if ctx.stats is not None:
        ctx.stats.cache = outcome


def _upstream_failed(err: RelayError) -> bool:
    """The call failed on the upstream side (a stale answer is better than none); a caller's
    error (4xx other than 429) is never answered from the cache."""
    return err.status >= 500 or err.status == 429
