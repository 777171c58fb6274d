"""Microsoft Presidio as an extra PII detector, when it is installed (never a dependency).

``pii: {presidio: true}`` adds Presidio's analyzer (names, locations and the many recognizers it
ships) to the built-in detectors. It is imported only then, and its absence is a
:class:`~llmrelay.errors.ConfigError` at start-up, not a failure per request. Presidio runs a
spaCy model: expect milliseconds per prompt, not the built-in detectors' microseconds.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from llmrelay.errors import ConfigError
from llmrelay.pii.detectors import Span
from llmrelay.pii.redactor import SpanFinder


def presidio_finder(*, where: str, language: str = "en") -> SpanFinder:
    try:
        analyzer_module: Any = importlib.import_module("presidio_analyzer")
    except ImportError as err:
        raise ConfigError(
            f"`{where}` asks for Presidio, which is not installed (pip install presidio-analyzer)"
        ) from err
    analyzer = analyzer_module.AnalyzerEngine()

    def find(text: str) -> Iterator[Span]:
        for result in analyzer.analyze(text=text, language=language):
            label = "".join(c if c.isalnum() else "_" for c in str(result.entity_type).upper())
            yield Span(int(result.start), int(result.end), label or "PII")

    return find
