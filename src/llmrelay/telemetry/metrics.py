"""The metrics seam: one object whose methods the pipeline and the server call, whatever the backend.

:class:`Metrics` does nothing; the library uses it unless given another, so a ``Relay`` without a
metrics backend pays one method call per event. The server passes
:class:`~llmrelay.telemetry.prometheus.PrometheusMetrics`. A policy that has something to count
gets the object from :mod:`llmrelay.builder` and calls one method; a new series is one method here
(no-op) and one in the backend, e.g. the rate limiter's ``rate_limited(key, tier, limit)``.

:class:`RequestRecord` is one finished client call, built once by the server and read by both the
access log and the metrics, so the two always agree. :class:`StreamTimer` is the stream observer
behind time to first token, inter-token gaps and output tokens per second: per chunk it reads the
clock and bumps a local bucket count (well under a µs); the histogram gets the whole stream once,
at the end.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping

import msgspec

from llmrelay.policies.breaker_state import State
from llmrelay.stores.rates import Decision
from llmrelay.streams import StreamObserver
from llmrelay.types import ChatChunk, Usage

GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (seconds) of the inter-token gap histogram; the last, implicit bucket is +Inf."""


class StreamTimes(msgspec.Struct, frozen=True, kw_only=True):
    """What a stream's timer saw: first and last chunk (on the relay clock), and its chunk gaps."""

    first: float
    last: float
    gap_counts: tuple[int, ...]
    """Per bucket of :data:`GAP_BUCKETS` (and +Inf last), how many gaps fell in it (not cumulative)."""
    gap_sum: float


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One finished client call, as the access log and the metrics see it.

    ``alias`` is the configured name the requested ``model`` resolved to ("" when none did), the
    only model label metrics use: a caller cannot create series by inventing model names.
    ``overhead`` is llmrelay's own time: total minus upstream attempt time minus backoff waits; on
    a stream, up to the first chunk (the added time to first token). ``None`` when no attempt
    finished (a refused or failed call has no meaningful split).
    """

    request_id: str
    route: str
    status: int
    seconds: float
    model: str | None = None
    alias: str = ""
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    tier: str | None = None
    tags: Mapping[str, str] = msgspec.field(default_factory=dict)
    target: str | None = None
    provider: str | None = None
    answered_by: str | None = None
    """The model the provider said answered (the ledger's ``model``)."""
    usage: Usage | None = None
    cost: float | None = None
    error: str | None = None
    stream: bool = False
    outcome: str | None = None
    attempts: int = 0
    fallbacks: int = 0
    retries: int = 0
    overhead: float | None = None
    cache: str | None = None
    """The cache's outcome (``hit``, ``miss``, ...; ``None``: the alias has no cache)."""
    cost_saved: float | None = None
    """USD a cache hit did not spend."""
    ttft: float | None = None
    """A stream's time from the call's start to its first chunk."""
    trace_id: str | None = None
    at: float = 0.0
    """Unix time the call ended (the dashboard's request log)."""
    stream_times: StreamTimes | None = None
    request_limit: Decision | None = None
    """The tenant requests-per-minute decision nearest exhaustion (``None``: no tier limits it)."""
    token_limit: Decision | None = None
    """The tenant tokens-per-minute decision nearest exhaustion (its reservation, before reconcile)."""


class Metrics:
    """The no-op backend, and the interface every backend implements (see the module docstring)."""

    enabled = False
    """False here: callers skip building what only metrics would read (a stream's timer)."""

    def request(self, record: RequestRecord) -> None:
        """A client call finished (any status, unary or streamed)."""

    def upstream_error(self, target: str, provider: str, error_type: str) -> None:
        """An upstream attempt failed with the canonical error ``error_type`` (a class name)."""

    def circuit(self, target: str, old: State, new: State) -> None:
        """A circuit breaker moved from ``old`` to ``new`` (``new == old`` at start-up: initial)."""

    def budget(self, budget: str, subject: str, spent: float, limit: float) -> None:
        """A budget's spend in its current window as a call saw it (``subject``: the scope's value,
        a key id under ``scope: key``)."""

    def close(self) -> None:
        """The process is stopping (a worker's live gauges leave the multiprocess view)."""


class StreamTimer(StreamObserver):
    """Times the chunks delivered to the caller; :meth:`times` once the stream has ended."""

    __slots__ = ("_counts", "_first", "_gap_sum", "_last", "_now")

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._first: float | None = None
        self._last = 0.0
        self._counts = [0] * (len(GAP_BUCKETS) + 1)
        self._gap_sum = 0.0

    def on_chunk(self, chunk: ChatChunk) -> None:
        now = self._now()
        if self._first is None:
            self._first = now
        else:
            gap = now - self._last
            # bisect_left: a gap equal to a bound belongs to that bucket (Prometheus's `le`).
            self._counts[bisect_left(GAP_BUCKETS, gap)] += 1
            self._gap_sum += gap
        self._last = now

    @property
    def first(self) -> float | None:
        """When the first chunk was delivered (relay clock), ``None`` before it."""
        return self._first

    def times(self) -> StreamTimes | None:
        if self._first is None:
            return None
        return StreamTimes(
            first=self._first, last=self._last, gap_counts=tuple(self._counts), gap_sum=self._gap_sum
        )
