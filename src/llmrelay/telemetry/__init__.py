"""Telemetry: what the gateway tells operators about each call (docs/architecture.md §11).

* :mod:`.metrics`: the :class:`~.metrics.Metrics` seam policies and the server call (no-op by
  default, so the library pays nothing), the :class:`~.metrics.RequestRecord` of a finished call and
  the stream timer.
* :mod:`.prometheus`: the Prometheus implementation (``prometheus-client``, multiprocess aware),
  imported only by the server.
* :mod:`.attempts`: the target-scope policy that times upstream attempts and counts their errors.
* :mod:`.tracing`: OpenTelemetry spans (the optional ``otel`` extra, imported lazily).
* :mod:`.content_log`: the per-alias prompt/answer log (off by default).
* :mod:`.snapshots`: reading the metrics back (the alerts and the dashboard's charts).
* :mod:`.headroom`: rate-limit headroom now, worked out from the gauges when the metrics are read.
* :mod:`.log_export`: the access and content logs as OTLP log records (with tracing from config).
"""
