"""OTLP log export through the real server: with tracing configured, the access log and the content
log also reach a loopback OTLP/HTTP collector as OpenTelemetry log records (protobuf decoded here),
each with the call's request id and trace id, and no secret: not the caller's key, not the
provider's key, not a key pasted into the prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.e2e.gateway import run_gateway
from tests.fakes.server import serve

KEY = "sk-relay-otlp-logs-0123456789abcdef"
PROVIDER_SECRET = "prov-secret-otlp-0123456789"
PASTED = "sk-proj-pastedintoprompt0123456789"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Collector:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.paths: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/logs", self._logs)
        app.router.add_post("/v1/traces", self._traces)
        return app

    async def _logs(self, request: web.Request) -> web.Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        self.bodies.append(await request.read())
        return web.Response(status=200)

    async def _traces(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    def records(self) -> list[dict[str, Any]]:
        found = []
        for body in self.bodies:
            export = ExportLogsServiceRequest.FromString(body)
            for resource in export.resource_logs:
                service = {a.key: _value(a.value) for a in resource.resource.attributes}["service.name"]
                for scope in resource.scope_logs:
                    for record in scope.log_records:
                        found.append(
                            {
                                "service": service,
                                "trace_id": record.trace_id.hex(),
                                "event": record.event_name,
                                "body": _value(record.body),
                                "attributes": {a.key: _value(a.value) for a in record.attributes},
                            }
                        )
        return found


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.mark.asyncio
async def test_access_and_content_logs_are_exported_over_otlp_with_ids_and_no_secrets(tmp_path: Path) -> None:
    collector = Collector()
    async with serve(collector.app()) as sink:
        config = {
            "keys": [{"key": KEY, "name": "otlp"}],
            "telemetry": {"otlp_endpoint": sink + "/v1/traces", "service_name": "relay-logs"},
            "models": [
                {
                    "name": "logged",
                    "log_content": True,
                    "targets": [{"provider": "mock", "api_key": PROVIDER_SECRET}],
                }
            ],
        }
        async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as session:
            body = {"model": "logged", "messages": [{"role": "user", "content": f"my key is {PASTED}"}]}
            headers = {
                "authorization": f"Bearer {KEY}",
                "x-request-id": "otlp-logs-1",
                "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
            }
            async with session.post(gw.url + "/v1/chat/completions", json=body, headers=headers) as resp:
                assert resp.status == 200
                await resp.read()
            for _ in range(100):  # the SDK exports in batches, about once a second
                events = {r["event"] for r in collector.records()}
                if {"request", "content"} <= events:
                    break
                await asyncio.sleep(0.1)  # polling with a deadline (10 s)
    records = collector.records()
    by_event = {r["event"]: r for r in records if r["attributes"].get("llmrelay.request_id") == "otlp-logs-1"}
    assert set(by_event) == {"request", "content"}, records
    access, content = by_event["request"], by_event["content"]
    for record in (access, content):
        assert record["trace_id"] == TRACE  # the caller's trace: joins the log to the call's spans
        assert record["service"] == "relay-logs"
        assert record["attributes"]["llmrelay.trace_id"] == TRACE
    assert access["attributes"]["llmrelay.status"] == 200
    assert access["attributes"]["llmrelay.key_id"] == "static_otlp"
    assert access["attributes"]["logger.name"] == "llmrelay.access"
    assert "my key is" in content["body"]  # the prompt, as the content log wrote it
    everything = repr(records) + repr(collector.bodies)
    for secret in (KEY, PROVIDER_SECRET, PASTED):
        assert secret not in everything
