"""The alert loop the server runs: evaluate every rule once per window, send what changed.

At each rule's window boundary (Unix time, so every worker and replica agrees on it) the evaluator
takes a snapshot of the metrics, computes the rule's value against the snapshot from the previous
boundary (:mod:`.rules`) and compares it with the rule's state: a rule that starts firing sends a
``firing`` event, one that stops sends ``resolved``; nothing is sent while the state holds. A rule
over many things at once (``budget_used``: every budget) has a value and a state per instance, so
each budget crossing its threshold fires (and resolves) on its own. Every worker runs the loop over
the same shared metrics, so they reach the same verdicts; before sending, one takes a lease in the
state store (``set_if_absent`` on ``<rule>:<instance>:<status>:<window>``), and only the one that
got it sends: one message per change across workers and replicas that share state.
Time comes from the injected clock; the loop sleeps until the next boundary.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from llmrelay.alerts.rules import AlertRule, AlertsConfig, firing, values
from llmrelay.alerts.webhooks import AlertEvent, Deliveries, Status, event
from llmrelay.clock import Clock
from llmrelay.stores.base import KV
from llmrelay.telemetry.snapshots import Snapshot

log = logging.getLogger("llmrelay.alerts")


class Evaluator:
    def __init__(
        self,
        config: AlertsConfig,
        snapshot: Callable[[], Snapshot],
        leases: KV,
        clock: Clock,
        *,
        deliveries: Deliveries | None = None,
    ) -> None:
        self._rules = config.rules
        self._snapshot = snapshot
        self._leases = leases
        self._clock = clock
        self._deliveries = deliveries or Deliveries(config.webhooks)
        self._before: dict[str, Snapshot] = {}
        self._older: dict[str, Snapshot] = {}
        self._firing: dict[tuple[str, str], bool] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the lease store and the webhooks' clients, then run the loop until :meth:`aclose`."""
        await self._leases.open()
        await self._deliveries.open()
        self.prime()
        self._task = asyncio.get_running_loop().create_task(self._run(self._clock.wall()))

    def prime(self) -> None:
        """Every rule starts resolved, its first window counted from now."""
        first = self._snapshot()
        for rule in self._rules:
            self._before[rule.name] = first

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._deliveries.aclose()
        await self._leases.aclose()

    async def _run(self, started: float) -> None:
        due = {rule.name: _next_boundary(started, rule.window) for rule in self._rules}
        while True:
            wake = min(due.values())
            await self._clock.sleep(wake - self._clock.wall())
            now = self._clock.wall()
            for rule in self._rules:
                if due[rule.name] <= now:
                    try:
                        await self.evaluate(rule, now)
                    except Exception:  # one bad evaluation must not end alerting
                        log.exception("alert rule %s could not be evaluated", rule.name)
                    due[rule.name] = _next_boundary(now, rule.window)

    async def evaluate(self, rule: AlertRule, now: float) -> list[AlertEvent]:
        """Judge ``rule`` over the window ending now; send (once, under the lease) what changed."""
        current = self._snapshot()
        before = self._before[rule.name]
        observed = values(rule, before, current, self._older.get(rule.name))
        self._older[rule.name], self._before[rule.name] = before, current
        sent = []
        for instance, found in observed.items():
            verdict = firing(rule, found)
            if verdict is None or verdict == self._firing.get((rule.name, instance), False):
                continue
            self._firing[(rule.name, instance)] = verdict
            status: Status = "firing" if verdict else "resolved"
            window = math.floor(now / rule.window)
            lease = f"{rule.name}:{instance}:{status}:{window}"
            if not await self._leases.set_if_absent(lease, b"1", ttl=rule.window * 10):
                continue  # another worker or replica sent it
            alert = event(rule, status, found, now, instance=instance or None)
            log.warning("%s", alert.summary)
            await self._deliveries.send(alert, now)
            sent.append(alert)
        return sent


def _next_boundary(now: float, window: float) -> float:
    return (math.floor(now / window) + 1) * window
