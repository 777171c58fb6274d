"""``GET /metrics``: Prometheus exposition of the gateway's state, gathered at scrape time.

A collector reads the circuit breakers when Prometheus asks, so the request path pays nothing for
it. Per-request counters and latency histograms belong to the telemetry policy (its own issue).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.relay import Relay
from llmrelay.server.handler import ServerState

_STATE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class CircuitCollector(Collector):
    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "llmrelay_circuit_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            labels=["target"],
        )
        trips = CounterMetricFamily("llmrelay_circuit_trips", "Times the circuit opened", labels=["target"])
        failures = GaugeMetricFamily(
            "llmrelay_circuit_recent_failures", "Failures in the breaker's window", labels=["target"]
        )
        for circuit in self._relay.circuits():
            target = [circuit["target"]]
            state.add_metric(target, _STATE[circuit["state"]])
            trips.add_metric(target, circuit["trips"])
            failures.add_metric(target, circuit["recent_failures"])
        yield from (state, trips, failures)


def registry_for(relay: Relay) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(CircuitCollector(relay))
    return registry


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.llmrelay
    return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)
