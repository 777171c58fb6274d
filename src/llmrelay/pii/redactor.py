"""Replacing what the detectors find: for good (``[EMAIL]``) or reversibly (``<EMAIL_1>``).

:meth:`Redactor.mask` is for logs and outputs: the value is gone. :class:`Vault` is one request's
reversible table: :meth:`Vault.redact` swaps each value for a numbered placeholder (the same
value gets the same placeholder everywhere in the request, so the model can still tell that two
mentions are one person) and :meth:`Vault.restore` puts the values back into the answer.
Placeholders never match a detector, and an unknown one (a model inventing ``<EMAIL_9>``) is
left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from llmrelay.pii.detectors import DetectorSet, Span

SpanFinder = Callable[[str], Iterable[Span]]
"""An extra detector (Presidio): text -> spans."""
_Replacement = Callable[[Span, str], str]

PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]{0,30}_\d{1,6})>")
PLACEHOLDER_MAX = 40
"""Longest placeholder, ``<`` to ``>``: what a stream may hold back while one may be forming."""


class Redactor:
    """Detectors plus the optional Presidio analyzer; finds spans that do not overlap."""

    def __init__(self, detectors: DetectorSet, extra: Sequence[SpanFinder] = ()) -> None:
        self._detectors = detectors
        self._extra = tuple(extra)

    def spans(self, text: str) -> list[Span]:
        found = list(self._detectors.find(text))
        for finder in self._extra:
            found.extend(finder(text))
        if len(found) > 1:
            found.sort(key=lambda s: (s.start, -s.end))
        kept: list[Span] = []
        for span in found:
            if not kept or span.start >= kept[-1].end:
                kept.append(span)
        return kept

    def mask(self, text: str) -> str:
        """``text`` with every finding replaced by its label: ``[EMAIL]``."""
        return _replace(text, self.spans(text), lambda span, value: f"[{span.label}]")

    def count(self, text: str) -> int:
        return len(self.spans(text))


class Vault:
    """One request's placeholders, both ways."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._by_value: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def redact(self, text: str) -> str:
        spans = self._redactor.spans(text)
        return _replace(text, spans, self._placeholder) if spans else text

    def _placeholder(self, span: Span, value: str) -> str:
        name = self._by_value.get(value)
        if name is None:
            n = self._counts.get(span.label, 0) + 1
            self._counts[span.label] = n
            name = f"{span.label}_{n}"
            self._by_value[value], self._by_name[name] = name, value
        return f"<{name}>"

    def restore(self, text: str) -> str:
        if "<" not in text or not self._by_name:
            return text
        return PLACEHOLDER.sub(lambda m: self._by_name.get(m.group(1), m.group(0)), text)


def _replace(text: str, spans: Sequence[Span], replacement: _Replacement) -> str:
    out, at = [], 0
    for span in spans:
        out.append(text[at : span.start])
        out.append(replacement(span, text[span.start : span.end]))
        at = span.end
    out.append(text[at:])
    return "".join(out)
