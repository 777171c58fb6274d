"""In-process rate limits: one replica's counters in a dict, on the injected clock.

Each counter is one float (its GCRA state, :mod:`llmrelay.stores.rates`); a counter whose state is
in the past is the same as a missing one, so expired counters are swept every
:data:`SWEEP_EVERY` writes (amortised O(1); nothing scans per request). Every method runs without
awaiting anything, so a take over several counters is atomic on the event loop.

Per process: with ``llmrelay serve --workers N`` each worker would count alone, which is why the
server refuses several workers with limits unless ``state.redis`` is set (:mod:`.rates_redis`).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmrelay.clock import Clock
from llmrelay.stores.rates import LINE_GRACE, Decision, Line, Take, adjusted, admit, behind, decide

SWEEP_EVERY = 10_000


class MemoryRateLimits:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._lines: dict[str, dict[str, float]] = {}
        """Waiting lines: key -> member -> when it joined, in the order they joined."""
        self._writes = 0

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def settle(self) -> None:
        return None  # adjust and leave are done when they return

    async def take(
        self,
        takes: Sequence[Take],
        *,
        slots: Sequence[tuple[str, int]] = (),
        lease: str = "",
        ttl: float = 0.0,
        line: Line | None = None,
    ) -> list[Decision]:
        now = self._clock.now()
        if line is None:
            return self._take(takes, slots, lease, ttl, now, charge=True)
        waiting = self._lines.setdefault(line.key, {})
        for member in [m for m, joined in waiting.items() if joined + line.wait + LINE_GRACE <= now]:
            del waiting[member]  # a waiter that went away without leaving
        ahead = next(iter(waiting), line.member) != line.member
        decisions = self._take(takes, slots, lease, ttl, now, charge=not ahead)
        if ahead:
            decisions = behind(decisions)
        if admit(decisions):
            waiting.pop(line.member, None)
        else:
            waiting.setdefault(line.member, now)
        if not waiting:
            del self._lines[line.key]
        return decisions

    def _take(
        self,
        takes: Sequence[Take],
        slots: Sequence[tuple[str, int]],
        lease: str,
        ttl: float,
        now: float,
        *,
        charge: bool,
    ) -> list[Decision]:
        tats = self._tats
        if len(takes) == 1 and not slots:  # the common case, without the lists
            take = takes[0]
            new, decision = decide(tats.get(take.key, 0.0), now, take.units, take.rate)
            if decision.allowed and charge:
                tats[take.key] = new
                self._wrote(now)
            return [decision]
        held = [self._live(key, limit, now) for key, limit in slots]
        results = [decide(tats.get(t.key, 0.0), now, t.units, t.rate) for t in takes]
        ok = all(len(h) < limit for h, (_, limit) in zip(held, slots, strict=True))
        ok = ok and all(d.allowed for _, d in results)
        decisions = []
        for h, (_, limit) in zip(held, slots, strict=True):
            free = len(h) < limit
            left = limit - len(h) - (1 if ok else 0)
            decisions.append(Decision(free, limit, max(0, left), 0.0, 0.0 if free else 1.0))
        decisions += [d for _, d in results]
        if ok and charge:
            for h in held:
                h[lease] = now + ttl
            for take, (new, _) in zip(takes, results, strict=True):
                tats[take.key] = new
            self._wrote(now)
        return decisions

    async def adjust(self, takes: Sequence[Take]) -> None:
        self._charge(takes)

    def _charge(self, takes: Sequence[Take]) -> None:
        now = self._clock.now()
        for take in takes:
            self._tats[take.key] = adjusted(self._tats.get(take.key, 0.0), now, take.units, take.rate)
        self._wrote(now)

    async def peek(self, takes: Sequence[Take]) -> list[Decision]:
        now = self._clock.now()
        return [decide(self._tats.get(t.key, 0.0), now, t.units, t.rate)[1] for t in takes]

    async def leave(self, keys: Sequence[str], lease: str, *, adjust: Sequence[Take] = ()) -> None:
        if adjust:
            self._charge(adjust)
        for key in keys:
            for places in (self._leases, self._lines):  # a slot, or a place in a line
                held = places.get(key)
                if held is not None:
                    held.pop(lease, None)
                    if not held:
                        del places[key]

    def _live(self, key: str, limit: int, now: float) -> dict[str, float]:
        """The leases of ``key``; expired ones are only looked for when it is full (only then
        can they change a decision)."""
        held = self._leases.get(key)
        if held is None:
            held = self._leases[key] = {}
        elif len(held) >= limit:
            for lease in [lease for lease, until in held.items() if until <= now]:
                del held[lease]
        return held

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
