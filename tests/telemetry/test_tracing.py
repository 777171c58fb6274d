"""OpenTelemetry spans: the tree of a call with one retry and one fallback, GenAI attributes,
the W3C ``traceparent`` taken from the caller and sent upstream, and no text unless configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llmrelay import Relay
from llmrelay.config import load_config
from llmrelay.context import CallStats
from llmrelay.types import ChatRequest, text_message
from tests.fakes.openai_upstream import OpenAIUpstream
from tests.fakes.server import serve

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
HI = [{"role": "user", "content": "secret prompt words"}]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def tracer(exporter: InMemorySpanExporter) -> Any:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[OpenAIUpstream, str]]:
    fake = OpenAIUpstream()
    async with serve(fake.app()) as url:
        yield fake, url + "/v1"


def retry_then_fallback(base: str, **telemetry: Any) -> dict[str, Any]:
    return {
        "telemetry": telemetry,
        "models": [
            {
                "name": "main",
                "targets": [
                    {"provider": "mock", "model": "mock-1", "name": "flaky", "options": {"fail_times": 2}}
                ],
                "retry": {"max_retries": 1, "base": 0.001, "cap": 0.001},
                "fallbacks": ["backup"],
            },
            {"name": "backup", "targets": [{"provider": "openai", "model": "gpt-4o-mini", "base_url": base}]},
        ],
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_span_tree_of_a_call_with_one_retry_and_one_fallback(
    exporter: InMemorySpanExporter, upstream: tuple[OpenAIUpstream, str], stream: bool
) -> None:
    fake, base = upstream
    relay = Relay(load_config(retry_then_fallback(base)), tracer=tracer(exporter))
    async with relay:
        ctx = relay.context(stats=CallStats(), traceparent=CALLER, trace_id=CALLER_TRACE)
        request = ChatRequest(
            model="main", messages=(text_message("user", "secret prompt words"),), stream=stream
        )
        result = await relay.send(request, ctx)
        if stream:
            from llmrelay.streams import ChatStream

            assert isinstance(result, ChatStream)
            await result.collect()
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    (root,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert root.name == "chat main"
    attempts = sorted((s for s in spans if s is not root), key=lambda s: s.start_time or 0)
    # the caller's trace continues: the call's span is a child of the caller's span
    assert root.kind == SpanKind.SERVER
    assert f"{root.context.trace_id:032x}" == CALLER_TRACE
    assert root.parent is not None and f"{root.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert ctx.stats is not None and ctx.stats.trace_id == CALLER_TRACE
    # three attempts, siblings under the call: flaky twice (one retry), then the fallback
    assert [s.name for s in attempts] == ["chat mock-1", "chat mock-1", "chat gpt-4o-mini"]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in attempts)
    assert all(s.kind == SpanKind.CLIENT for s in attempts)
    assert [s.attributes["llmrelay.attempt"] for s in attempts] == [0, 1, 0]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert attempts[0].attributes["error.type"] == "UpstreamError"
    last = attempts[2].attributes
    assert last["gen_ai.provider.name"] == "openai"
    assert last["gen_ai.request.model"] == "gpt-4o-mini"
    assert last["gen_ai.response.model"] == "gpt-4o-mini"
    assert (last["gen_ai.usage.input_tokens"], last["gen_ai.usage.output_tokens"]) == (3, 5)
    a = root.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "main"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (3, 5)
    assert (a["llmrelay.attempts"], a["llmrelay.fallbacks"]) == (3, 1)
    assert a["llmrelay.target"] == "openai/gpt-4o-mini"
    # the upstream got the fallback attempt's span as its parent
    sent = fake.last.headers["traceparent"]
    assert sent == f"00-{CALLER_TRACE}-{attempts[2].context.span_id:016x}-01"
    # no text anywhere unless capture_content is on
    assert not any("secret" in str(v) for s in spans for v in (s.attributes or {}).values())


async def test_capture_content_puts_prompt_and_answer_on_the_call_span(
    exporter: InMemorySpanExporter, upstream: tuple[OpenAIUpstream, str]
) -> None:
    _, base = upstream
    relay = Relay(load_config(retry_then_fallback(base, capture_content=True)), tracer=tracer(exporter))
    async with relay:
        await relay.chat("backup", HI)
    (root,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert "secret prompt words" in str(root.attributes["gen_ai.input.messages"])
    assert "You said: secret prompt words" in str(root.attributes["gen_ai.output.messages"])


async def test_without_tracing_the_callers_traceparent_goes_upstream_as_it_came(
    upstream: tuple[OpenAIUpstream, str],
) -> None:
    fake, base = upstream
    async with Relay(load_config(retry_then_fallback(base))) as relay:
        request = ChatRequest(model="backup", messages=(text_message("user", "hi"),))
        await relay.send(request, relay.context(traceparent=CALLER))
        assert fake.last.headers["traceparent"] == CALLER
        await relay.chat("backup", HI)
        assert "traceparent" not in fake.last.headers


async def test_a_failed_call_ends_its_span_with_the_error(exporter: InMemorySpanExporter) -> None:
    config = {"models": [{"name": "down", "targets": [{"provider": "mock", "options": {"fail_times": 9}}]}]}
    config["models"][0]["retry"] = {"max_retries": 0}
    async with Relay(load_config(config), tracer=tracer(exporter)) as relay:
        with pytest.raises(Exception, match="mock"):
            await relay.chat("down", HI)
    (root,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes["error.type"] == "UpstreamError"


async def test_an_otlp_endpoint_in_config_exports_the_spans_to_it() -> None:
    """``telemetry.otlp_endpoint`` alone turns tracing on; closing the relay flushes the batch."""
    received: list[tuple[str, bytes]] = []

    async def sink(request: web.Request) -> web.Response:
        received.append((request.headers.get("content-type", ""), await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/traces", sink)
    async with serve(app) as url:
        config = {
            "telemetry": {"otlp_endpoint": url + "/v1/traces", "service_name": "relay-under-test"},
            "models": [{"name": "m", "targets": [{"provider": "mock", "model": "mock-1"}]}],
        }
        async with Relay(load_config(config)) as relay:
            await relay.chat("m", HI)
        unsampled = {**config, "telemetry": {**config["telemetry"], "sample_ratio": 0.0}}  # type: ignore[dict-item]
        async with Relay(load_config(unsampled)) as relay:
            await relay.chat("m", HI)
    assert len(received) == 1  # the second relay recorded nothing
    kind, body = received[0]
    assert kind == "application/x-protobuf"
    assert b"relay-under-test" in body and b"gen_ai.request.model" in body and b"chat m" in body
