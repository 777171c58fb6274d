"""What the dashboard shows over time, kept in process: no Prometheus, no database needed.

:class:`History` samples the metrics every ``step`` seconds (a snapshot of every sample, all
workers' with several) and keeps ``size`` points of what changed between samples: calls and 5xx
per second, latency p50/p95, llmrelay's overhead p95, tokens per second and spend, the last two also
by key, team, model (the alias) and each configured tag label, and each key's rate-limit headroom
(its share of the limit left). :class:`Recent`
keeps this worker's last calls (their :class:`~llmrelay.telemetry.metrics.RequestRecord`, never
prompt text) for the request log browser: one ``deque.append`` per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence

import msgspec

from llmrelay.clock import Clock
from llmrelay.server.ui.headroom import headroom_shares
from llmrelay.telemetry.metrics import RequestRecord
from llmrelay.telemetry.snapshots import Snapshot, increase, increase_by, quantile


class Point(msgspec.Struct, frozen=True, kw_only=True):
    at: float
    """Unix time of the sample."""
    requests: float
    errors: float
    p50: float | None
    p95: float | None
    overhead_p95: float | None
    tokens: float
    spend: float
    """USD spent since the previous sample."""
    tokens_by: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    """Per dimension (a label of the token metrics: ``key``, ``team``, ``alias``, a tag), tokens
    per second by its values."""
    spend_by: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    """The same for USD spent since the previous sample."""
    headroom: dict[str, float] = msgspec.field(default_factory=dict)
    """``<key> (<tier>) <kind>`` -> share of its rate limit left at the sample."""


DIMENSIONS = ("key", "team", "alias")
"""The labels every token and cost series has (tags only where ``telemetry.tag_labels`` says)."""


class History:
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        clock: Clock,
        *,
        step: float = 5.0,
        size: int = 720,
        tags: Sequence[str] = (),
    ) -> None:
        self._snapshot = snapshot
        self._clock = clock
        self.dimensions = (*DIMENSIONS, *tags)
        self.step = step
        self.points: deque[Point] = deque(maxlen=size)
        self._last: tuple[float, Snapshot] | None = None
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        now, current = self._clock.wall(), self._snapshot()
        if self._last is not None:
            at, before = self._last
            seconds = max(now - at, 1e-9)
            duration = "llmrelay_request_duration_seconds"
            self.points.append(
                Point(
                    at=now,
                    requests=increase(before, current, "llmrelay_requests_total") / seconds,
                    errors=increase(before, current, "llmrelay_requests_total", status_class="5xx") / seconds,
                    p50=quantile(before, current, duration, 0.5),
                    p95=quantile(before, current, duration, 0.95),
                    overhead_p95=quantile(before, current, "llmrelay_overhead_seconds", 0.95),
                    tokens=increase(before, current, "llmrelay_tokens_total") / seconds,
                    spend=increase(before, current, "llmrelay_cost_usd_total"),
                    tokens_by={
                        d: {
                            v: n / seconds
                            for v, n in increase_by(before, current, "llmrelay_tokens_total", d).items()
                        }
                        for d in self.dimensions
                    },
                    spend_by={
                        d: increase_by(before, current, "llmrelay_cost_usd_total", d) for d in self.dimensions
                    },
                    headroom=headroom_shares(current),
                )
            )
        self._last = (now, current)

    def start(self) -> None:
        self.sample()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self.step)
            self.sample()


class Recent:
    def __init__(self, size: int = 1000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)

    def search(
        self,
        *,
        request_id: str = "",
        key: str = "",
        alias: str = "",
        status: str = "",
        limit: int = 200,
    ) -> list[RequestRecord]:
        """Newest first; each non-empty filter must match (``status`` also as ``4xx``/``5xx``)."""
        found = []
        for record in reversed(self._records):
            if request_id and record.request_id != request_id:
                continue
            if key and record.key_id != key:
                continue
            if alias and alias not in (record.alias, record.model):
                continue
            if status and status not in (str(record.status), f"{record.status // 100}xx"):
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found
