"""One structured JSON line per request, on the ``llmrelay.access`` logger.

Each line is a :class:`~llmrelay.telemetry.metrics.RequestRecord` (the same one the metrics count,
so the two agree): request id, trace id, key id (never the key), route, requested model and the
alias it resolved to, the target that answered, status, latency, attempts, fallbacks, llmrelay's
overhead (``overhead_ms``; a stream's up to its first chunk, with ``ttft_ms``), tokens, cost in USD
(``cost_usd``, absent when the target's price is unknown), whether it streamed and how it ended,
the cache's outcome (``cache``) and what a hit saved (``cost_saved_usd``).
Prompt text is never logged here (that is :mod:`llmrelay.telemetry.content_log`, off by default);
secrets cannot be, because nothing that holds them is passed in.
The two fields a caller or an upstream writes, ``model`` and ``error``, are PII-masked here
(:mod:`llmrelay.pii`), which is cheaper than masking the whole line as
:class:`~llmrelay.pii.log_filter.MaskingFormatter` does for the other loggers (the line's hex ids
are full of digits the detectors would look at).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from llmrelay.pii.detectors import DetectorSet
from llmrelay.pii.redactor import Redactor
from llmrelay.telemetry.metrics import RequestRecord

_encoder = msgspec.json.Encoder()
_KNOWN_MODELS = 1024


class AccessLog:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("llmrelay.access")
        self._mask = Redactor(DetectorSet()).mask
        self._models: dict[str, str] = {}  # model name -> masked: the same few names every request

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
            "model": self._masked_model(record.model) if record.model else record.model,
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
            line["error"] = self._mask(record.error)
        if record.outcome is not None:
            line["outcome"] = record.outcome
        if record.cache is not None:
            line["cache"] = record.cache
        if record.cost_saved is not None:
            line["cost_saved_usd"] = round(record.cost_saved, 10)
        self._logger.info(_encoder.encode(line).decode())

    def _masked_model(self, model: str) -> str:
        masked = self._models.get(model)
        if masked is None:
            masked = self._mask(model)
            if len(self._models) < _KNOWN_MODELS:  # names a caller makes up are masked each time
                self._models[model] = masked
        return masked
