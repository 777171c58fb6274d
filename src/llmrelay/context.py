"""The per-call context: an explicit, immutable argument next to the request.

Policies read it and pass a changed copy on (``ctx.replace(attempt=2)``); nothing is kept in
context variables or globals, so a test builds one by hand and a policy's effect is visible in
what it passes to ``call_next``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import msgspec

from llmrelay.clock import Clock
from llmrelay.stores.rates import Decision


class CallStats(msgspec.Struct, kw_only=True):
    """What happened inside one call: upstream attempts, targets tried, fallbacks taken, the cache,
    the tenant rate-limit decisions nearest exhaustion, and where the time went.

    The one mutable thing a context carries (like a tracing span): the router, the retry, the
    cache policies and the attempt timer add to it; the server reads it for
    ``x-llmrelay-attempts`` / ``x-llmrelay-fallbacks`` / ``x-llmrelay-cache``, the ``x-ratelimit-*``
    headers (``requests``, ``tokens``: set by the tenant limits), the access log and the metrics.
    ``cache`` is the cache's outcome (``hit``, ``miss``, ``stale``, ``bypass``; ``None``: the alias
    has no cache) and ``cost_saved`` the USD a hit did not spend (``None``: not a hit, or the price
    is unknown). ``upstream_seconds`` is the time spent in upstream attempts (a stream's up to its
    first chunk), ``backoff_seconds`` the retry waits: what is left of a call's time is llmrelay's
    own overhead.
    """

    attempts: int = 0
    targets: list[str] = msgspec.field(default_factory=list)
    fallbacks: int = 0
    requests: Decision | None = None
    tokens: Decision | None = None
    cache: str | None = None
    cost_saved: float | None = None
    upstream_seconds: float = 0.0
    backoff_seconds: float = 0.0
    trace_id: str | None = None
    """Set by the tracing policy: the trace of this call's span (the access log's ``trace_id``)."""


def new_request_id() -> str:
    """128 random bits as hex (os.urandom directly: a uuid4 object costs 4x as much per request)."""
    return os.urandom(16).hex()


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, by when the answer is due, and where the call is in the pipeline.

    ``deadline`` is on the relay clock's monotonic scale (``clock.now()``); ``None`` means none.
    ``principal`` is the virtual key id (never the key itself). ``target`` is set by the router for
    the target scope. ``user``, ``team`` and ``tier`` say whom limits and budgets count against:
    they come from the key's record (or a JWT's claims), never from what a request says about
    itself. ``tags`` attribute cost and metrics (feature, customer, ...).
    ``idempotency_key`` is the caller's ``Idempotency-Key`` (or a job id), already scoped to the
    principal by whoever set it. ``cache_control`` is the caller's ``Cache-Control`` header, read
    by the cache policy (:mod:`llmrelay.cache.control`).
    ``traceparent`` is the W3C trace context providers send upstream (the current attempt's span
    when tracing is on, else the caller's own header passed through); ``trace_id`` is its trace.
    """

    clock: Clock
    request_id: str = msgspec.field(default_factory=new_request_id)
    deadline: float | None = None
    attempt: int = 0
    target: str | None = None
    principal: str | None = None
    user: str | None = None
    team: str | None = None
    tier: str | None = None
    trace_id: str | None = None
    traceparent: str | None = None
    idempotency_key: str | None = None
    cache_control: str | None = None
    stats: CallStats | None = None
    tags: Mapping[str, str] = msgspec.field(default_factory=dict)

    def replace(self, **changes: Any) -> Context:
        """A changed copy (a frozen msgspec struct: several times cheaper than dataclasses.replace)."""
        return msgspec.structs.replace(self, **changes)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), or ``None`` without one."""
        if self.deadline is None:
            return None
        return self.deadline - self.clock.now()

    def with_timeout(self, seconds: float | None) -> Context:
        """A copy whose deadline is at most ``seconds`` from now (an earlier one is kept)."""
        if seconds is None:
            return self
        deadline = self.clock.now() + seconds
        if self.deadline is not None and self.deadline <= deadline:
            return self
        return self.replace(deadline=deadline)
