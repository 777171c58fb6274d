"""One structured JSON line per request, on the ``llmrelay.access`` logger.

Each line is a :class:`~llmrelay.telemetry.metrics.RequestRecord` (the same one the metrics count,
so the two agree): request id, trace id, key id (never the key), route, requested model and the
alias it resolved to, the target that answered, status, latency, attempts, fallbacks, llmrelay's
overhead (``overhead_ms``; a stream's up to its first chunk, with ``ttft_ms``), tokens, cost in USD
(``cost_usd``, absent when the target's price is unknown), whether it streamed and how it ended.
Prompt text is never logged here (that is :mod:`llmrelay.telemetry.content_log`, off by default);
secrets cannot be, because nothing that holds them is passed in.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from llmrelay.telemetry.metrics import RequestRecord

_encoder = msgspec.json.Encoder()


class AccessLog:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("llmrelay.access")

    @property
    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def record(self, record: RequestRecord) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        line: dict[str, Any] = {
            "event": "request",
            "request_id": record.request_id,
            "key_id": record.key_id,
            "route": record.route,
            "model": record.model,
            "target": record.target,
            "status": record.status,
            "latency_ms": round(record.seconds * 1000, 2),
            "stream": record.stream,
        }
        if record.alias and record.alias != record.model:
            line["alias"] = record.alias
        if record.trace_id is not None:
            line["trace_id"] = record.trace_id
        if record.attempts:
            line["attempts"] = record.attempts
            line["fallbacks"] = record.fallbacks
        if record.overhead is not None:
            line["overhead_ms"] = round(record.overhead * 1000, 3)
        if record.ttft is not None:
            line["ttft_ms"] = round(record.ttft * 1000, 2)
        usage = record.usage
        if usage is not None:
            line["input_tokens"] = usage.input_tokens
            line["output_tokens"] = usage.output_tokens
            if usage.cached_input_tokens:
                line["cached_input_tokens"] = usage.cached_input_tokens
        if record.cost is not None:
            line["cost_usd"] = round(record.cost, 10)
        if record.error is not None:
            line["error"] = record.error
        if record.outcome is not None:
            line["outcome"] = record.outcome
        self._logger.info(_encoder.encode(line).decode())
