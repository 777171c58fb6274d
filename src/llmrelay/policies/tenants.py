"""Tenant limits: tiers in config, which counters a request counts against, and the wait for room.

Shared by :mod:`.request_limit` (requests per minute and concurrency, before the cache) and
:mod:`.token_limit` (tokens per minute, after it); see docs/architecture.md §4.

A **tier** is a named limit set (``tiers: {free: {rpm: 20, tpm: 40000, concurrent: 2}}``). A key
holds a tier (its record's ``tier``; a JWT's tier claim); a caller without one gets the tier named
``default`` if there is one, else no limits. Each tier limits:

* every **key** of the tier on its own (the top-level ``rpm``, ``tpm``, ``concurrent``), and per
  alias within the tier (``models: {gpt-4o: {rpm: 5}}``, counted per key and alias);
* every **user** and every **team** of the tier on its own (``user: {...}``, ``team: {...}``):
  ``ctx.user`` and ``ctx.team`` come from the key's record or the JWT, never from the request,
  except that an alias with ``trust_user: true`` counts the request's ``user`` field as the user
  (an application key serving many end users);
* all callers of the tier together (``total: {...}``).

A request counts against every counter that applies, all or nothing (:mod:`llmrelay.stores.rates`).
``queue: N`` makes a refused request wait up to N seconds for room (first come, first served among
the waiters of one counter in this process; never past the deadline) instead of a 429. A request
that can never fit (more tokens than a whole TPM) is refused at once, saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from llmrelay.context import Context
from llmrelay.errors import PermissionDenied, RateLimited
from llmrelay.service import Request
from llmrelay.stores.rates import Decision, Rate, RateLimits, Take, nearest

DEFAULT_TIER = "default"
APPLIED_CACHE = 10_000
MINUTE = 60.0

_Count = Annotated[int, Meta(ge=1)]
Scope = Literal["key", "user", "team", "tier"]


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per minute: ``rpm`` requests, ``tpm`` tokens (input + output); ``concurrent`` in flight."""

    rpm: _Count | None = None
    tpm: _Count | None = None
    concurrent: _Count | None = None


class TierConfig(Limits, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One tier: its per-key limits (the fields of :class:`Limits`), per-alias limits per key,
    per-user, per-team and whole-tier limits, and how long a refused request may queue."""

    queue: Annotated[float, Meta(ge=0)] = 0.0
    models: dict[str, Limits] = msgspec.field(default_factory=dict)
    user: Limits | None = None
    team: Limits | None = None
    total: Limits | None = None


@dataclass(frozen=True, slots=True)
class Counter:
    """One limit set a request may count against; ``prefix`` + the subject's id names its state."""

    scope: Scope
    prefix: str
    label: str
    rpm: Rate | None
    tpm: Rate | None
    concurrent: int | None


class Applied:
    """The counters of one caller, each with its subject's id, and the tier's queue. Built once
    per caller and alias and kept (:class:`Tenancy` caches them), so the request-count takes and
    the concurrency slots are built once too."""

    __slots__ = ("_token_keys", "counters", "queue", "requests", "slots", "tier")

    def __init__(self, tier: str, queue: float, counters: tuple[tuple[Counter, str], ...]) -> None:
        self.tier = tier
        self.queue = queue
        self.counters = counters
        self.requests = [
            Take(f"{c.prefix}{subject}:r", 1, c.rpm) for c, subject in counters if c.rpm is not None
        ]
        self.slots = [
            (f"{c.prefix}{subject}:c", c.concurrent) for c, subject in counters if c.concurrent is not None
        ]
        self._token_keys = [(f"{c.prefix}{subject}:t", c.tpm) for c, subject in counters if c.tpm is not None]

    @property
    def has_tokens(self) -> bool:
        return bool(self._token_keys)

    def tokens(self, units: float) -> list[Take]:
        return [Take(key, units, rate) for key, rate in self._token_keys]

    def label(self, index: int, kind: Literal["r", "t", "c"]) -> str:
        """Which limit the ``index``-th take (or slot) of ``kind`` is, for a refusal message."""
        attr = {"r": "rpm", "t": "tpm", "c": "concurrent"}[kind]
        named = [c for c, _ in self.counters if getattr(c, attr) is not None]
        return named[index].label


class Tenancy:
    """Resolves a request to the counters of its tier (a few dict lookups; plans are built once
    per tier and alias)."""

    def __init__(
        self,
        tiers: Mapping[str, TierConfig],
        *,
        alias_of: Callable[[str], str | None],
        trusts_user: Callable[[str], bool],
    ) -> None:
        self._tiers = dict(tiers)
        self._alias_of = alias_of
        self._trusts_user = trusts_user
        self._plans: dict[tuple[str, str | None], tuple[Counter, ...]] = {}
        self._applied: dict[tuple[str | None, ...], Applied] = {}
        self._fallback = DEFAULT_TIER if DEFAULT_TIER in self._tiers else None

    def applied(self, request: Request, ctx: Context) -> Applied | None:
        """The counters ``request`` counts against, or ``None`` when its caller has no tier."""
        user = request.user if request.user is not None and self._trusts_user(request.model) else None
        return self.for_caller(ctx, model=request.model, user=user)

    def for_caller(
        self, ctx: Context, *, model: str | None = None, user: str | None = None
    ) -> Applied | None:
        """The counters of a caller (``model``: with that alias's own limits; ``user``: a trusted
        request's user field in place of ``ctx.user``)."""
        tier = ctx.tier or self._fallback
        if tier is None:
            return None
        config = self._tiers.get(tier)
        if config is None:
            raise PermissionDenied(f"the caller's tier {tier!r} is not configured", code="unknown_tier")
        alias = self._alias_of(model) if config.models and model is not None else None
        principal, user = ctx.principal or "anonymous", user or ctx.user
        cache_key = (tier, alias, principal, user, ctx.team)
        found = self._applied.get(cache_key)
        if found is not None:
            return found
        plan = self._plans.get((tier, alias))
        if plan is None:
            plan = self._plans[(tier, alias)] = _plan(tier, config, alias)
        ids = {"key": principal, "user": user, "team": ctx.team, "tier": "all"}
        counters = tuple((c, ids[c.scope]) for c in plan if ids[c.scope] is not None)
        if len(self._applied) >= APPLIED_CACHE:
            self._applied.clear()  # callers are few in practice; a flood of new ones costs a rebuild
        applied = self._applied[cache_key] = Applied(tier, config.queue, counters)  # type: ignore[arg-type]
        return applied

    async def report(self, store: RateLimits, ctx: Context) -> dict[str, Any]:
        """A caller's limits and their headroom now (``GET /v1/key/info``), charging nothing."""
        applied = self.for_caller(ctx)
        if applied is None:
            return {"tier": None, "limits": []}
        limits = []
        for counter, subject in applied.counters:
            entry: dict[str, Any] = {"scope": counter.scope, "applies_to": counter.label}
            for name, rate, kind in (("requests", counter.rpm, "r"), ("tokens", counter.tpm, "t")):
                if rate is not None:
                    seen = (await store.peek([Take(f"{counter.prefix}{subject}:{kind}", 0, rate)]))[0]
                    entry[f"{name}_per_minute"] = {
                        "limit": int(rate.limit),
                        "remaining": seen.remaining,
                        "reset_seconds": round(seen.reset, 3),
                    }
            if counter.concurrent is not None:
                entry["concurrent"] = {"limit": counter.concurrent}
            limits.append(entry)
        models = {alias: msgspec.to_builtins(m) for alias, m in self._tiers[applied.tier].models.items()}
        return {"tier": applied.tier, "queue_seconds": applied.queue, "limits": limits, "per_model": models}


def _plan(tier: str, config: TierConfig, alias: str | None) -> tuple[Counter, ...]:
    sets: list[tuple[Scope, Limits, str, str]] = [("key", config, f"{tier}:key:", f"key (tier {tier!r})")]
    if alias is not None and alias in config.models:
        sets.append(
            ("key", config.models[alias], f"{tier}:{alias}:key:", f"key for {alias!r} (tier {tier!r})")
        )
    for scope, limits in (("user", config.user), ("team", config.team), ("tier", config.total)):
        if limits is not None:
            sets.append((scope, limits, f"{tier}:{scope}:", f"{scope} (tier {tier!r})"))  # type: ignore[arg-type]
    return tuple(
        Counter(
            scope=scope,
            prefix=prefix,
            label=label,
            rpm=Rate(limits.rpm, MINUTE) if limits.rpm else None,
            tpm=Rate(limits.tpm, MINUTE) if limits.tpm else None,
            concurrent=limits.concurrent,
        )
        for scope, limits, prefix, label in sets
        if limits.rpm or limits.tpm or limits.concurrent
    )


_UNITS = {"r": "requests per minute", "t": "tokens per minute", "c": "concurrent requests"}


def refusal(applied: Applied, decisions: Sequence[Decision], kind: Literal["r", "t", "c"]) -> RateLimited:
    """The 429 for the first refused counter: which limit, its size, when to come back."""
    index = next(i for i, d in enumerate(decisions) if not d.allowed)
    decision = decisions[index]
    what = f"{_UNITS[kind]} of this {applied.label(index, kind)}"
    if decision.never_fits:
        return RateLimited(
            f"this request's estimated tokens exceed the whole limit of {int(decision.limit)} {what}:"
            " it can never be admitted; send a shorter prompt or a lower max_tokens",
            code="request_too_large_for_limit",
        )
    wait = decision.retry_after
    return RateLimited(
        f"rate limit reached: {int(decision.limit)} {what}; retry after {max(1, math.ceil(wait))} s",
        retry_after=wait,
    )


def record(ctx: Context, kind: Literal["requests", "tokens"], decisions: Sequence[Decision]) -> None:
    """Keep the decision nearest exhaustion for the ``x-ratelimit-*`` headers."""
    stats = ctx.stats
    if stats is None:
        return
    found = decisions[0] if len(decisions) == 1 else nearest(decisions)
    if found is None:
        return
    current = getattr(stats, kind)
    if current is None or found.headroom < current.headroom:
        setattr(stats, kind, found)
