"""The request-scope policies an alias opts into: input guards, PII redaction, output moderation,
the content log and the cache.

Each is built only when some alias configures it, so a config without them pays nothing per
call; when one is built, the aliases without it cost it a lookup. :mod:`llmrelay.builder` places
them in the pipeline (docs/architecture.md §4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import cast

from llmrelay.cache.embedder import Embedder, MiniLM
from llmrelay.cache.index_sync import IndexSync
from llmrelay.cache.semantic import Semantic
from llmrelay.cache.settings import SemanticConfig
from llmrelay.cache.verify import CHECKS, Check, Verifier
from llmrelay.clock import Clock
from llmrelay.config import Config, Secret
from llmrelay.policies.cache import AliasCache, Cache
from llmrelay.policies.moderate_output import ModerateOutput, OutputHook
from llmrelay.policies.redact_pii import RedactPii, build_redactor
from llmrelay.policies.validate_input import ValidateInput, load_hook
from llmrelay.pricing.cost import cost_at
from llmrelay.pricing.prices import Price
from llmrelay.routing.router import Router
from llmrelay.service import Policy
from llmrelay.stores import open_kv
from llmrelay.stores.base import Resource
from llmrelay.telemetry.content_log import ContentLog
from llmrelay.wire.upstream_text import Credentials


def input_guards(config: Config, router: Router) -> list[Policy]:
    """The ``validate_input`` policy, only when some alias has guards (others then cost a lookup)."""
    guards = {m.name: m.guards for m in config.models if m.guards is not None}
    if not guards:
        return []
    hooks = {
        m.name: load_hook(m.guards.hook, where=f"$.models[{i}].guards.hook")
        for i, m in enumerate(config.models)
        if m.guards is not None and m.guards.hook is not None
    }
    return [ValidateInput(guards, hooks, alias_of=router.names.alias)]


def pii_redaction(config: Config, router: Router) -> list[Policy]:
    """The ``redact_pii`` policy, only when some alias configures ``pii``."""
    configs = {m.name: m.pii for m in config.models if m.pii is not None}
    if not configs:
        return []
    redactors = {
        m.name: build_redactor(m.pii, where=f"$.models[{i}].pii")
        for i, m in enumerate(config.models)
        if m.pii is not None
    }
    return [RedactPii(configs, redactors, alias_of=router.names.alias)]


def moderation(config: Config, router: Router) -> list[Policy]:
    """The ``moderate_output`` policy, only when some alias configures ``moderation``."""
    settings = {
        m.name: (
            m.moderation,
            cast(OutputHook, load_hook(m.moderation.hook, where=f"$.models[{i}].moderation.hook")),
        )
        for i, m in enumerate(config.models)
        if m.moderation is not None
    }
    return [ModerateOutput(settings, alias_of=router.names.alias)] if settings else []


def content_log(config: Config, router: Router) -> list[Policy]:
    """The prompt/answer log, only when some alias has ``log_content`` (off by default)."""
    aliases = {m.name for m in config.models if m.log_content}
    if not aliases:
        return []
    # Keys read from files or commands are not known here: the key-shaped pattern masks them.
    secrets = [config.server.master_key, *(k.key for k in config.keys)]
    for model in config.models:
        for target in model.targets:
            sources = [target.api_key, *target.api_keys]
            secrets += [s.spec for s in sources if s is not None and isinstance(s.spec, Secret)]
    values = [s.reveal() for s in secrets if s is not None]
    values += [v for m in config.models for t in m.targets for v in t.headers.values()]
    return [ContentLog(aliases, router.names.alias, Credentials.of(values))]


def cache_policy(
    config: Config,
    router: Router,
    clock: Clock,
    prices: Mapping[str, Price | None],
    *,
    keep: Callable[[Resource], None],
) -> Cache | None:
    """The ``cache`` policy and its store, only when some alias caches (others then cost a lookup).

    Its own namespace, so cache churn never evicts idempotency records; in memory unless
    ``state.cache.url`` names a shared store. On Redis, the semantic indexes of every replica are
    kept in step through it (:mod:`llmrelay.cache.index_sync`)."""
    caching = [(i, m.name, m.cache) for i, m in enumerate(config.models) if m.cache is not None]
    if not caching:
        return None
    store = config.state.cache
    kv = open_kv(
        store.url or "memory://",
        clock,
        namespace=store.namespace,
        max_entries=store.max_entries,
        max_bytes=store.max_bytes,
    )
    keep(kv)  # opened and closed with the pipeline's other stores
    embedder: Embedder | None = None
    settings: dict[str, AliasCache] = {}
    for i, name, cache in caching:
        semantic = None
        if cache.semantic is not None:
            where = f"$.models[{i}].cache.semantic"
            embedder = embedder or MiniLM(where=where)
            semantic = Semantic(cache.semantic, embedder, _verifier(cache.semantic, where), clock)
        settings[name] = AliasCache(name, cache, semantic)
    semantics = {name: alias.semantic for name, alias in settings.items() if alias.semantic is not None}
    index_sync = None
    if semantics and store.url is not None and store.url.startswith(("redis://", "rediss://")):
        shared = [(c.ttl, c.semantic.max_entries) for _, _, c in caching if c.semantic is not None]
        index_sync = IndexSync(
            store.url,
            store.namespace,
            semantics,
            clock,
            max_len=max(entries for _, entries in shared),
            max_ttl=max(ttl for ttl, _ in shared),
        )
        keep(index_sync)

    def settings_for(name: str) -> AliasCache | None:
        found = router.names.resolve(name)
        return settings.get(found.alias) if found is not None else None

    return Cache(
        kv,
        clock,
        settings_for=settings_for,
        aliases=list(settings.values()),
        cost=partial(cost_at, prices),
        index_sync=index_sync,
    )


def _verifier(config: SemanticConfig, where: str) -> Verifier:
    checks: list[Check] = [CHECKS[name] for name in config.checks]
    if config.hook is not None:
        checks.append(cast(Check, load_hook(config.hook, where=f"{where}.hook")))
    return Verifier(checks)
