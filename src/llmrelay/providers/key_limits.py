"""Per-key upstream limits: the RPM/TPM of each key of a target's key ring, by try-acquire.

Where it sits: inside a provider call, in :class:`~llmrelay.providers.keyring.KeyRing`, below the
target's own limit (:mod:`llmrelay.policies.rate_limit`, the account as a whole) and above the
HTTP request. A target whose keys belong to several accounts (or several projects with limits of
their own) sets ``rpm``/``tpm`` on each key entry::

    api_keys:
      - {key: "${OPENAI_KEY_A}", rpm: 500, tpm: 200000}
      - {file: /run/secrets/openai-b, rpm: 500, tpm: 200000}

Before an attempt the ring asks :meth:`KeyLimits.take` for the key it would send: one request
and the request's token estimate (the input estimate plus the output bound), all or nothing, from
that key's counters in the shared :class:`~llmrelay.stores.rates.RateLimits` store (so replicas
sharing Redis share each key's budget). A refused key is skipped for the next one; only when
every key of the target is refused does the attempt fail with
:class:`~llmrelay.errors.TargetLimited`, whose ``retry_after`` is the shortest of the keys' waits:
the router fails over, or the request holds, exactly as for the target's own limit. The tokens
are reconciled to the actual usage at the end (an observer on a stream) and given back when the
attempt fails. A key without its own limits always has room.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmrelay.config import TargetConfig
from llmrelay.policies.token_limit import adjustment, estimate, reconciler
from llmrelay.service import Request, Result
from llmrelay.stores.rates import Rate, RateLimits, Take
from llmrelay.streams import ChatStream

MINUTE = 60.0


class KeyLimits:
    """The counters of one target's keys (``None`` for a key without limits of its own)."""

    def __init__(
        self, store: RateLimits, *, label: str, rates: Sequence[tuple[Rate | None, Rate | None]]
    ) -> None:
        self._store = store
        self._requests = [
            None if rpm is None else Take(f"target:{label}:key{i}:r", 1, rpm)
            for i, (rpm, _) in enumerate(rates)
        ]
        self._tokens = [
            None if tpm is None else (f"target:{label}:key{i}:t", tpm) for i, (_, tpm) in enumerate(rates)
        ]

    @classmethod
    def of(cls, target: TargetConfig, store: RateLimits) -> KeyLimits | None:
        """The limits of ``target``'s keys, or ``None`` when no key has any."""
        if not target.limits_keys:
            return None
        rates = [
            (Rate(k.rpm, MINUTE) if k.rpm else None, Rate(k.tpm, MINUTE) if k.tpm else None)
            for k in target.keys
        ]
        return cls(store, label=target.label, rates=rates)

    async def take(self, index: int, request: Request | None) -> list[Take] | float:
        """Try to take an attempt's request and tokens from key ``index``: the token takes to
        settle afterwards (:meth:`settle`), or the seconds until this key has room (``inf``:
        the request can never fit its TPM)."""
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
