"""The server's log lines with PII masked, always: a formatter on the ``llmrelay`` logger.

Prompts and answers are never logged, but a log line can still carry PII: a model name or a path
a caller made up, an upstream's error message quoting the request, a traceback. Every line the
server writes through the ``llmrelay`` logger tree (the access log included) passes the built-in
detectors (:mod:`llmrelay.pii.detectors`) after formatting, so ``[EMAIL]`` is what reaches the
log. The access log (``llmrelay.access``) masks its two outside-written fields itself
(:mod:`llmrelay.server.access_log`): its hex ids would make whole-line masking cost ~30 µs a request.
"""

from __future__ import annotations

import logging

from llmrelay.pii.detectors import DetectorSet
from llmrelay.pii.redactor import Redactor

ACCESS_LOGGER = "llmrelay.access"


class MaskingFormatter(logging.Formatter):
    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._redactor = Redactor(DetectorSet())

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line if record.name == ACCESS_LOGGER else self._redactor.mask(line)
