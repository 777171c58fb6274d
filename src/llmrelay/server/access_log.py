"""One structured JSON line per request, on the ``llmrelay.access`` logger.

Fields: request id, key id (never the key), route, model alias, target that answered, status,
latency, tokens, cost in USD (``cost_usd``, absent when the target's price is unknown), whether it
streamed and how it ended, the cache's outcome (``cache``) and what a hit saved
(``cost_saved_usd``). Prompt text is never logged here; secrets
cannot be, because nothing that holds them is passed in. The two fields a caller or an upstream
writes, ``model`` and ``error``, are PII-masked here (:mod:`llmrelay.pii`), which is cheaper than
masking the whole line as :class:`~llmrelay.pii.log_filter.MaskingFormatter` does for the other
loggers (the line's hex ids are full of digits the detectors would look at).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from llmrelay.pii.detectors import DetectorSet
from llmrelay.pii.redactor import Redactor
from llmrelay.types import Usage

_encoder = msgspec.json.Encoder()
_KNOWN_MODELS = 1024


class AccessLog:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("llmrelay.access")
        self._mask = Redactor(DetectorSet()).mask
        self._models: dict[str, str] = {}  # model name -> masked: the same few names every request

    def record(
        self,
        *,
        request_id: str,
        key_id: str | None,
        route: str,
        model: str | None,
        target: str | None,
        status: int,
        latency_ms: float,
        usage: Usage | None = None,
        cost: float | None = None,
        error: str | None = None,
        stream: bool = False,
        outcome: str | None = None,
        cache: str | None = None,
        cost_saved: float | None = None,
    ) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        line: dict[str, Any] = {
            "event": "request",
            "request_id": request_id,
            "key_id": key_id,
            "route": route,
            "model": self._masked_model(model) if model else model,
            "target": target,
            "status": status,
            "latency_ms": round(latency_ms, 2),
            "stream": stream,
        }
        if usage is not None:
            line["input_tokens"] = usage.input_tokens
            line["output_tokens"] = usage.output_tokens
        if cost is not None:
            line["cost_usd"] = round(cost, 10)
        if error is not None:
            line["error"] = self._mask(error)
        if outcome is not None:
            line["outcome"] = outcome
        if cache is not None:
            line["cache"] = cache
        if cost_saved is not None:
            line["cost_saved_usd"] = round(cost_saved, 10)
        self._logger.info(_encoder.encode(line).decode())

    def _masked_model(self, model: str) -> str:
        masked = self._models.get(model)
        if masked is None:
            masked = self._mask(model)
            if len(self._models) < _KNOWN_MODELS:  # names a caller makes up are masked each time
                self._models[model] = masked
        return masked
