"""Upstream limits: the RPM/TPM of a provider account, by try-acquire, for a whole target
(:class:`~llmrelay.policies.rate_limit.TargetLimit`) or for each key of its key ring.

Where it sits: in the target scope, between ``circuit_breaker`` and ``timeout`` for the target's
own ``rpm``/``tpm``, and inside a provider call, in :class:`~llmrelay.providers.keyring.KeyRing`,
for keys with limits of their own: a target whose keys belong to several accounts (or projects
with limits of their own) sets ``rpm``/``tpm`` on each key entry::

    api_keys:
      - {key: "${OPENAI_KEY_A}", rpm: 500, tpm: 200000}
      - {file: /run/secrets/openai-b, rpm: 500, tpm: 200000}

Before an attempt, :meth:`UpstreamLimits.take` asks one set of counters (the target's, or the key
the ring would send) for one request and the request's token estimate (the input estimate plus the
output bound), all or nothing, in the shared :class:`~llmrelay.stores.rates.RateLimits` store (so
replicas sharing Redis share each budget). The key ring skips a key without room for the next one;
only when every key is refused does the attempt fail with :class:`~llmrelay.errors.TargetLimited`
(:func:`limited`), whose ``retry_after`` is the shortest of the waits: the router fails over, or
the request holds, exactly as for the target's own limit. The tokens are reconciled to the actual
usage at the end (:meth:`UpstreamLimits.settle`; an observer on a stream) and given back when the
attempt fails. A key without limits of its own always has room.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llmrelay.config import TargetConfig
from llmrelay.errors import TargetLimited
from llmrelay.policies.token_limit import adjustment, estimate, reconciler
from llmrelay.service import Request, Result
from llmrelay.stores.rates import Rate, RateLimits, Take
from llmrelay.streams import ChatStream

MINUTE = 60.0


class UpstreamLimits:
    """Sets of counters, each an (id prefix, rpm, tpm); ``None`` rates do not limit."""

    def __init__(self, store: RateLimits, counters: Sequence[tuple[str, Rate | None, Rate | None]]) -> None:
        self._store = store
        self._requests = [None if rpm is None else Take(f"{prefix}r", 1, rpm) for prefix, rpm, _ in counters]
        self._tokens = [None if tpm is None else (f"{prefix}t", tpm) for prefix, _, tpm in counters]

    @classmethod
    def of_keys(cls, target: TargetConfig, store: RateLimits) -> UpstreamLimits | None:
        """One set per key of ``target``, or ``None`` when no key has limits of its own."""
        if not target.limits_keys:
            return None
        return cls(
            store,
            [
                (f"target:{target.label}:key{i}:", per_minute(k.rpm), per_minute(k.tpm))
                for i, k in enumerate(target.keys)
            ],
        )

    async def take(self, index: int, request: Request | None) -> list[Take] | float:
        """Try to take an attempt's request and tokens from the ``index``-th set: the token takes
        to settle afterwards (:meth:`settle`), or the seconds until it has room (``inf``: the
        request can never fit its TPM)."""
        takes: list[Take] = []
        requests, tokens = self._requests[index], self._tokens[index]
        if requests is not None:
            takes.append(requests)
        if tokens is not None:
            key, rate = tokens
            takes.append(Take(key, estimate(request) if request is not None else 0, rate))
        if not takes:
            return []
        decisions = await self._store.take(takes)
        refused = [d.retry_after for d in decisions if not d.allowed]
        if refused:
            return max(refused)
        return takes[1:] if requests is not None else takes

    async def settle(self, held: list[Take], result: Result | None) -> None:
        """Reconcile the tokens ``held`` to ``result``'s usage (``None``: the attempt failed, all
        of them go back); a stream reconciles when it ends."""
        if not held:
            return
        if isinstance(result, ChatStream):
            result.observe(reconciler(self._store, held))
            return
        adjust = adjustment(held, None if result is None else result.usage)
        if adjust:
            await self._store.adjust(adjust)


def limited(subject: str, wait: float, cause: BaseException | None = None) -> TargetLimited:
    """The refusal of an attempt whose counters (``subject``: the target, every key) are out."""
    never = math.isinf(wait)
    error = TargetLimited(
        f"{subject} at its own rate limit" + ("" if never else f" for {wait:.1f} s"),
        retry_after=None if never else wait,
    )
    error.__cause__ = cause
    return error


def per_minute(limit: int | None) -> Rate | None:
    """``limit`` units a minute (``None``: no limit)."""
    return Rate(limit, MINUTE) if limit else None
