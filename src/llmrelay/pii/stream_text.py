"""Placeholders restored, and PII masked, across a stream whose chunks may split them.

A :class:`~llmrelay.streams.ChunkRewriter` (docs/architecture.md §3): the stream's one pump passes
every batch through :meth:`PiiRewriter.rewrite` before delivery. An answer's text (and each tool
call's arguments) is a channel: text is released as soon as nothing in it can still change, so

- when only restoring, a ``<`` that may start a placeholder (``<EMAIL_1>`` arriving as ``<EMA`` +
  ``IL_1>``) is held until its ``>`` or until it cannot be one (at most
  :data:`~llmrelay.pii.redactor.PLACEHOLDER_MAX` characters); other text goes out at once;
- when also masking outputs, the last :data:`WINDOW` characters are held (no built-in finding is
  longer), and never a finding cut in two: the reader sees the answer that much later.

A chunk that ends the answer (``finish_reason``) takes everything still held with it.
"""

from __future__ import annotations

import re

import msgspec

from llmrelay.pii.redactor import PLACEHOLDER, PLACEHOLDER_MAX, Redactor, Vault
from llmrelay.streams import Batch
from llmrelay.types import ChatChunk, ToolCallDelta

WINDOW = 64
_OPENING = re.compile(r"<[A-Z0-9_]*\Z")


class Channel:
    """One stream of text (the answer, or one tool call's arguments)."""

    def __init__(self, vault: Vault, masker: Redactor | None) -> None:
        self._vault = vault
        self._masker = masker
        self._held = ""

    def feed(self, text: str) -> str:
        held = self._held + text
        cut = self._safe_cut(held)
        self._held = held[cut:]
        return self._release(held[:cut])

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self._release(held)

    def _safe_cut(self, text: str) -> int:
        cut = len(text)
        opening = text.rfind("<", max(0, cut - PLACEHOLDER_MAX))
        if opening >= 0 and _OPENING.match(text, opening):
            cut = opening
        if self._masker is None:
            return cut
        cut = min(cut, max(0, len(text) - WINDOW))
        for span in self._masker.spans(text):
            if span.start < cut < span.end:
                cut = span.start
        for placeholder in PLACEHOLDER.finditer(text):
            if placeholder.start() < cut < placeholder.end():
                cut = placeholder.start()
        return cut

    def _release(self, text: str) -> str:
        if not text:
            return text
        if self._masker is not None:
            text = self._masker.mask(text)
        return self._vault.restore(text)


class PiiRewriter:
    def __init__(self, vault: Vault, masker: Redactor | None) -> None:
        self._vault = vault
        self._masker = masker
        self._text = Channel(vault, masker)
        self._calls: dict[int, Channel] = {}

    def rewrite(self, batch: Batch) -> Batch:
        out: list[ChatChunk] = []
        for chunk in batch:
            rewritten = self._chunk(chunk)
            if rewritten is not None:
                out.append(rewritten)
        return out

    def flush(self) -> Batch:
        text = self._text.flush()
        calls = self._flush_calls()
        return [ChatChunk(text=text, tool_calls=calls)] if text or calls else []

    def _chunk(self, chunk: ChatChunk) -> ChatChunk | None:
        text = self._text.feed(chunk.text) if chunk.text else ""
        calls = tuple(self._call(delta) for delta in chunk.tool_calls)
        if chunk.finish_reason is not None:
            text += self._text.flush()
            calls += self._flush_calls()
        if not text and not calls and _only_text(chunk):
            return None  # everything in it is held for now
        return msgspec.structs.replace(chunk, text=text, tool_calls=calls)

    def _call(self, delta: ToolCallDelta) -> ToolCallDelta:
        channel = self._calls.get(delta.index)
        if channel is None:
            channel = self._calls[delta.index] = Channel(self._vault, self._masker)
        if not delta.arguments:
            return delta
        return msgspec.structs.replace(delta, arguments=channel.feed(delta.arguments))

    def _flush_calls(self) -> tuple[ToolCallDelta, ...]:
        flushed = []
        for index, channel in self._calls.items():
            rest = channel.flush()
            if rest:
                flushed.append(ToolCallDelta(index=index, arguments=rest))
        return tuple(flushed)


def _only_text(chunk: ChatChunk) -> bool:
    return (
        not chunk.tool_calls
        and not chunk.reasoning
        and chunk.finish_reason is None
        and chunk.usage is None
        and chunk.meta is None
    )
