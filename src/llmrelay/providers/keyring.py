"""A target's provider keys: which one an attempt sends, and the next one when it is refused.

Where it sits: inside a provider call, below the target's ``timeout`` policy and above the HTTP
request (docs/architecture.md §4). Each :class:`~llmrelay.providers.http.Upstream` owns one ring;
a provider runs each upstream attempt through :meth:`KeyRing.call`, which hands the attempt the
key to send (read from its :mod:`~llmrelay.secret_sources` reader just then, so a rotated key
reaches the next request and requests in flight finish with theirs).

With several keys (``api_key`` then ``api_keys``): a key answered 401 or 403
(:class:`~llmrelay.errors.UpstreamAuthError`) is benched for ``key_cooldown`` seconds and the same
request is sent with the next key at once; only when every key is refused does the error leave the
ring, to count once against the target's circuit breaker and fail over. A 429 moves to the next key
only when ``key_accounts: separate`` (keys of one account share its rate limit, so another key
would be refused too); the key is then benched for the reply's ``Retry-After`` or the cooldown.
A benched key is still used when every key is benched (the one whose bench ends first), and a
benched key whose value changed since (rotated) is ready again. A stream's refusal arrives before
its commit point, so streams fail over between keys the same way. One key, or none: the attempt
runs as is.

**Per-key limits** (``rpm``/``tpm`` on a key entry, :mod:`.upstream_limits`): before each key is sent,
its own counters are asked for room (try-acquire); a key without room is skipped for the next one,
and when every key was skipped (or refused after being skipped over) the attempt fails with
:class:`~llmrelay.errors.TargetLimited`, the shortest wait of the keys as its ``retry_after``: the
target is rate limited as a whole, so the router fails over or the request holds, as for the
target's own ``rpm``/``tpm``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from llmrelay.clock import Clock
from llmrelay.config import TargetConfig
from llmrelay.errors import RateLimited, RelayError, UpstreamAuthError
from llmrelay.providers.upstream_limits import UpstreamLimits, limited
from llmrelay.secret_sources import SecretReader, reader_for
from llmrelay.service import Request, Result
from llmrelay.stores.rates import RateLimits

log = logging.getLogger("llmrelay.keys")

R = TypeVar("R", bound=Result)

_REMEMBERED = 16
"""Past key values kept for scrubbing upstream messages (an upstream may echo a rotated-out key)."""


class KeyRing:
    def __init__(
        self,
        readers: list[SecretReader],
        *,
        clock: Clock,
        accounts: Literal["shared", "separate"] = "shared",
        cooldown: float = 60.0,
        label: str = "target",
        limits: UpstreamLimits | None = None,
    ) -> None:
        self._readers = tuple(readers)
        self._limits = limits
        self._clock = clock
        self._accounts = accounts
        self._cooldown = cooldown
        self._label = label
        self._benched: list[tuple[float, str]] = [(0.0, "")] * len(readers)
        self._seen: dict[str, None] = {}
        self.version = 0
        """Bumped when a key value not seen before is used (credentials to scrub changed)."""

    @classmethod
    def of(cls, target: TargetConfig, clock: Clock, limits: RateLimits | None = None) -> KeyRing:
        """The ring of ``target``'s keys; ``limits``: the store its keys' own limits count in."""
        return cls(
            [reader_for(source, clock) for source in target.keys],
            clock=clock,
            accounts=target.key_accounts,
            cooldown=target.key_cooldown,
            label=target.label,
            limits=None if limits is None else UpstreamLimits.of_keys(target, limits),
        )

    def __len__(self) -> int:
        return len(self._readers)

    async def open(self) -> None:
        for reader in self._readers:
            await reader.open()
            self._remember(reader.current())

    async def aclose(self) -> None:
        for reader in self._readers:
            await reader.aclose()

    def seen(self) -> tuple[str, ...]:
        """Every key value used so far (the last few), for scrubbing what an upstream says."""
        return tuple(self._seen)

    async def call(self, attempt: Callable[[str | None], Awaitable[R]], request: Request | None = None) -> R:
        """Run ``attempt`` with a key; on a refusal that another key may not get, with the next.
        ``request``: what the attempt sends, for the keys' own token limits."""
        limits = self._limits
        if len(self._readers) <= 1 and limits is None:
            return await attempt(self._key(0) if self._readers else None)
        order = self._order()
        waits: list[float] = []
        failure: RelayError | None = None
        for n, i in enumerate(order):
            held = await limits.take(i, request) if limits is not None else []
            if isinstance(held, float):
                waits.append(held)
                continue
            key = self._key(i)
            try:
                result = await attempt(key)
            except (UpstreamAuthError, RateLimited) as err:
                if limits is not None:
                    await limits.settle(held, None)
                separate = self._accounts == "separate"
                if not isinstance(err, UpstreamAuthError) and not separate:
                    raise
                cooldown = self._cooldown if isinstance(err, UpstreamAuthError) else err.retry_after
                self._bench(i, key, cooldown or self._cooldown, err, last=n == len(order) - 1)
                failure = err
                continue
            except BaseException:
                if limits is not None:
                    await limits.settle(held, None)
                raise
            if limits is not None:
                await limits.settle(held, result)
            return result
        if waits:
            raise limited(f"every key of target {self._label} is", min(waits), failure)
        assert failure is not None  # every key was tried: each one failed
        raise failure

    def _key(self, i: int) -> str:
        key = self._readers[i].current()
        if key not in self._seen:
            self._remember(key)
        return key

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        while len(self._seen) > _REMEMBERED:
            del self._seen[next(iter(self._seen))]
        self.version += 1

    def _order(self) -> list[int]:
        """Ready keys in config order, then benched ones by the end of their bench."""
        now = self._clock.now()
        ready, benched = [], []
        for i, (until, value) in enumerate(self._benched):
            if until <= now or self._readers[i].current() != value:
                ready.append(i)
            else:
                benched.append(i)
        return ready + sorted(benched, key=lambda i: self._benched[i][0])

    def _bench(self, i: int, key: str, seconds: float, err: RelayError, *, last: bool) -> None:
        self._benched[i] = (self._clock.now() + seconds, key)
        then = "no key left to try" if last else "trying the next key"
        log.warning(
            "%s: key %d of %d refused (%s %s); benched for %g s, %s",
            self._label,
            i + 1,
            len(self._readers),
            err.upstream_status if isinstance(err, UpstreamAuthError) else err.status,
            err.code,
            seconds,
            then,
        )
