"""OpenTelemetry traces: a span per request, a child span per upstream attempt (the ``otel`` extra).

Two policies, installed by :mod:`llmrelay.builder` only when tracing is configured
(``telemetry.otlp_endpoint``, or a tracer handed to ``Relay``), so without it nothing here is even
imported:

* :class:`TraceRequest` (request scope, outermost): the call's span, ``SERVER`` kind, named
  ``{operation} {model}``, a child of the caller's W3C ``traceparent`` when one came in
  (``ctx.traceparent``). It passes its own context down in ``ctx.traceparent`` and records the trace
  id in ``ctx.stats`` for the access log.
* :class:`TraceAttempt` (target scope, inside the breaker): one ``CLIENT`` span per upstream attempt,
  so a retry and a fallback show as siblings under the request. Its ``traceparent`` is what the
  providers send upstream.

Attributes follow the GenAI semantic conventions (``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.id``,
``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
``error.type``) plus ``llmrelay.*`` ones (target, attempt, attempts, fallbacks). Prompt and
completion text (``gen_ai.input.messages`` / ``gen_ai.output.messages``) only with
``telemetry.capture_content``. On a stream, a span ends when the stream does (an observer), with
the usage of the whole answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, Tracer

from llmrelay.config import TelemetryConfig
from llmrelay.context import Context
from llmrelay.errors import ConfigError
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import ChatRequest, ChatResponse, EmbeddingResponse

PROVIDER_NAMES = {"gemini": "gcp.gemini", "azure": "azure.ai.openai"}
"""Our provider names where the semantic conventions spell them otherwise."""


def otlp_tracer(config: TelemetryConfig) -> tuple[Tracer, Callable[[], object]]:
    """A tracer exporting over OTLP/HTTP to ``config.otlp_endpoint`` in batches, and its flush.

    The provider is the relay's own (never the process-global one), so two relays in a process
    export independently. ``sample_ratio`` of new traces are recorded; a caller's decision (the
    ``traceparent`` flags) is followed.
    """
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as err:
        raise ConfigError(
            "`$.telemetry.otlp_endpoint` needs the OpenTelemetry SDK: pip install 'llmrelay[otel]'"
        ) from err
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.otlp_endpoint)))
    return provider.get_tracer("llmrelay"), provider.force_flush


class TraceRequest:
    def __init__(self, tracer: Tracer, *, capture_content: bool = False) -> None:
        self._tracer = tracer
        self._capture = capture_content

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        operation = "chat" if isinstance(request, ChatRequest) else "embeddings"
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": request.model,
            "llmrelay.request_id": ctx.request_id,
        }
        if isinstance(request, ChatRequest):
            if request.max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = request.max_tokens
            if request.temperature is not None:
                attributes["gen_ai.request.temperature"] = request.temperature
            if self._capture:
                attributes["gen_ai.input.messages"] = msgspec.json.encode(request.messages).decode()
        span = self._tracer.start_span(
            f"{operation} {request.model}",
            context=_parent(ctx.traceparent),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        own = span.get_span_context()
        trace_id = f"{own.trace_id:032x}"
        if ctx.stats is not None:
            ctx.stats.trace_id = trace_id
        try:
            result = await call_next(request, ctx.replace(traceparent=traceparent(own), trace_id=trace_id))
        except BaseException as err:
            _failed(span, err)
            span.end()
            raise
        if ctx.stats is not None:
            span.set_attribute("llmrelay.attempts", ctx.stats.attempts)
            span.set_attribute("llmrelay.fallbacks", ctx.stats.fallbacks)
        _answered_by(span, result)
        return _end_with(span, result, self._capture)


class TraceAttempt:
    def __init__(
        self,
        tracer: Tracer,
        *,
        label: str,
        provider: str,
        model: str | None,
        capture_content: bool = False,
    ) -> None:
        self._tracer = tracer
        self._label = label
        self._provider = PROVIDER_NAMES.get(provider, provider)
        self._model = model
        self._capture = capture_content

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        operation = "chat" if isinstance(request, ChatRequest) else "embeddings"
        model = self._model or request.model
        span = self._tracer.start_span(
            f"{operation} {model}",
            context=_parent(ctx.traceparent),
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": self._provider,
                "gen_ai.request.model": model,
                "llmrelay.target": self._label,
                "llmrelay.attempt": ctx.attempt,
            },
        )
        try:
            result = await call_next(request, ctx.replace(traceparent=traceparent(span.get_span_context())))
        except BaseException as err:
            _failed(span, err)
            span.end()
            raise
        return _end_with(span, result, self._capture)


def traceparent(context: SpanContext) -> str:
    """The W3C ``traceparent`` header value naming ``context`` as the parent."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _parent(header: str | None) -> Any:
    """The OpenTelemetry context whose current span is the one ``header`` names (None: a root)."""
    if header is None:
        return None
    _, trace_id, span_id, flags = header.split("-")
    remote = SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=trace.TraceFlags(int(flags, 16))
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))


def _failed(span: Span, err: BaseException) -> None:
    span.set_attribute("error.type", type(err).__name__)
    span.set_status(Status(StatusCode.ERROR, type(err).__name__))


def _answered_by(span: Span, result: Result) -> None:
    if result.provider is not None:
        span.set_attribute("gen_ai.provider.name", PROVIDER_NAMES.get(result.provider, result.provider))
    if result.target is not None:
        span.set_attribute("llmrelay.target", result.target)


def _end_with(span: Span, result: Result, capture: bool) -> Result:
    """Describe the answer on ``span`` and end it; a stream's span ends with the stream."""
    if isinstance(result, ChatStream):
        result.observe(_EndSpan(span, capture))
        return result
    _describe(span, result, capture)
    span.end()
    return result


def _describe(span: Span, response: ChatResponse | EmbeddingResponse, capture: bool) -> None:
    span.set_attribute("gen_ai.response.model", response.model)
    span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
    if isinstance(response, ChatResponse):
        span.set_attribute("gen_ai.response.id", response.id)
        if response.finish_reason is not None:
            span.set_attribute("gen_ai.response.finish_reasons", (response.finish_reason,))
        if capture:
            span.set_attribute("gen_ai.output.messages", msgspec.json.encode([response.message]).decode())


class _EndSpan(StreamObserver):
    def __init__(self, span: Span, capture: bool) -> None:
        self._span = span
        self._capture = capture

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if error is not None:
            _failed(self._span, error)
        elif stream.done:
            _describe(self._span, stream.final(), self._capture)
        self._span.end()
