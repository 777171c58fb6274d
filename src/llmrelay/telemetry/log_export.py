"""OTLP log export: the access log and the content log also as OpenTelemetry log records.

Built with tracing from config (``telemetry.otlp_endpoint``; the ``otel`` extra, imported only
then): a :class:`logging.Handler` on the ``llmrelay.access`` and ``llmrelay.content`` loggers,
added when the relay opens and removed when it closes, feeding the OpenTelemetry logs SDK, which
batches the records on its own thread and posts them over OTLP/HTTP to
``telemetry.otlp_logs_endpoint`` (unset: the traces endpoint with ``/v1/logs`` for ``/v1/traces``).

A record is the line those loggers write, unchanged (the body: already without keys, PII-masked
or redacted there), the fields to search by as ``llmrelay.*`` attributes (``llmrelay.request_id``,
``llmrelay.key_id``, ``llmrelay.status``, ...),
the line's ``trace_id`` as the record's trace id (so a backend joins it to the call's spans) and
``event`` (``request``, ``content``) as its event name. Only what a logger lets through at its
level is exported; a line that is not a JSON object goes as it is. The request path pays nothing
more: the handler runs where the line is written and the export is on the SDK's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, SpanContext

from llmrelay.config import TelemetryConfig
from llmrelay.errors import ConfigError

LOGGERS = ("llmrelay.access", "llmrelay.content")
_SEVERITY = {
    logging.DEBUG: SeverityNumber.DEBUG,
    logging.INFO: SeverityNumber.INFO,
    logging.WARNING: SeverityNumber.WARN,
    logging.ERROR: SeverityNumber.ERROR,
    logging.CRITICAL: SeverityNumber.FATAL,
}
_decode = msgspec.json.Decoder().decode
_ATTRIBUTES = {
    name: f"llmrelay.{name}"
    for name in ("request_id", "trace_id", "key_id", "route", "model", "target", "status", "error", "outcome")
}
"""The fields that become attributes, to search and join by (the body has them all: the SDK's
attribute checks cost about 2 µs a field, on the thread that writes the line)."""
_NO_TRACE = trace.set_span_in_context(INVALID_SPAN)
"""A line without a trace id: never the trace of whatever span happens to be current."""


def _in_trace(trace_id: str) -> Context:
    """A context whose current span names the call's trace (the line has no span id: zero)."""
    span = SpanContext(int(trace_id, 16), 0, is_remote=True)
    return trace.set_span_in_context(NonRecordingSpan(span))


def logs_endpoint(config: TelemetryConfig) -> str:
    """Where log records go: the configured logs endpoint, else the traces endpoint's logs path."""
    if config.otlp_logs_endpoint is not None:
        return config.otlp_logs_endpoint
    assert config.otlp_endpoint is not None
    base = config.otlp_endpoint.rstrip("/")
    return base.removesuffix("/v1/traces") + "/v1/logs"


class LogExport(logging.Handler):
    """The handler; :meth:`attach` and :meth:`detach` put it on (and take it off) the loggers."""

    def __init__(self, provider: LoggerProvider, flush: Callable[[], object]) -> None:
        super().__init__(logging.INFO)
        self._otel = provider.get_logger("llmrelay")
        self.force_flush = flush

    def attach(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self)

    def detach(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        try:
            fields: Any = _decode(line)
        except msgspec.DecodeError:
            fields = None
        if not isinstance(fields, dict):
            fields = {}
        trace_id = fields.get("trace_id")
        self._otel.emit(
            LogRecord(
                timestamp=int(record.created * 1e9),
                context=_in_trace(trace_id)
                if isinstance(trace_id, str) and len(trace_id) == 32
                else _NO_TRACE,
                severity_text=record.levelname,
                severity_number=_SEVERITY.get(record.levelno, SeverityNumber.INFO),
                body=line,
                attributes={"logger.name": record.name}
                | {_ATTRIBUTES[name]: fields[name] for name in _ATTRIBUTES.keys() & fields.keys()},
                event_name=fields.get("event") if isinstance(fields.get("event"), str) else None,
            )
        )


def otlp_logs(config: TelemetryConfig) -> LogExport:
    """The export to OTLP/HTTP in batches; its ``force_flush`` pushes out what is buffered."""
    try:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource
    except ImportError as err:
        raise ConfigError(
            "`$.telemetry.otlp_endpoint` needs the OpenTelemetry SDK: pip install 'llmrelay[otel]'"
        ) from err
    provider = LoggerProvider(resource=Resource.create({"service.name": config.service_name}))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=logs_endpoint(config)))
    )
    return LogExport(provider, provider.force_flush)
