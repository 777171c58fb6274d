"""The aggregate of a stream: its chunks folded into the one answer they add up to.

Text is concatenated; tool-call fragments are joined by their ``index`` (ids and names arrive once,
arguments in pieces); reasoning fragments are joined by their ``index`` into
:class:`~llmrelay.types.ReasoningPart` values placed first (Anthropic wants thinking blocks before
the rest of a turn sent back); provider ``meta`` of text and calls is merged; the last finish
reason and usage win. :class:`~llmrelay.streams.ChatStream`
feeds every delivered chunk here, so ``final()`` is the answer the caller actually received.
"""

from __future__ import annotations

from collections.abc import Iterable

from llmrelay.types import (
    ChatChunk,
    ChatResponse,
    ContentPart,
    FinishReason,
    Message,
    PartMeta,
    ReasoningDelta,
    ReasoningPart,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)


class Aggregate:
    """Folds chunks into one message: text concatenated, tool-call fragments joined by index."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}
        self.call_ids: dict[int, str] = {}
        self.call_names: dict[int, str] = {}
        self.call_meta: dict[int, PartMeta] = {}
        self.text_meta: PartMeta | None = None
        self.reasoning: dict[int, list[ReasoningDelta]] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None

    def add(self, chunk: ChatChunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.tool_calls:
            self._add_calls(chunk.tool_calls)
        for delta in chunk.reasoning:
            self.reasoning.setdefault(delta.index, []).append(delta)
        if chunk.meta:
            self.text_meta = _merge(self.text_meta or {}, chunk.meta)
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    def _add_calls(self, deltas: Iterable[ToolCallDelta]) -> None:
        for delta in deltas:
            self.calls.setdefault(delta.index, []).append(delta.arguments)
            if delta.id:
                self.call_ids[delta.index] = delta.id
            if delta.name:
                self.call_names[delta.index] = delta.name
            if delta.meta:
                self.call_meta[delta.index] = _merge(self.call_meta.get(delta.index, {}), delta.meta)

    def response(
        self, *, id: str, model: str, created: int, provider: str | None, target: str | None
    ) -> ChatResponse:
        parts: list[ContentPart] = [_reasoning(self.reasoning[i]) for i in sorted(self.reasoning)]
        if self.text or self.text_meta:
            parts.append(TextPart(text="".join(self.text), meta=self.text_meta))
        for index in sorted(self.calls):
            parts.append(
                ToolCallPart(
                    id=self.call_ids.get(index, f"call_{index}"),
                    name=self.call_names.get(index, ""),
                    arguments="".join(self.calls[index]) or "{}",
                    meta=self.call_meta.get(index),
                )
            )
        return ChatResponse(
            id=id,
            model=model,
            created=created,
            message=Message(role="assistant", content=tuple(parts)),
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
            provider=provider,
            target=target,
        )


def _reasoning(deltas: list[ReasoningDelta]) -> ReasoningPart:
    """One reasoning part from its fragments: text and signature pieces joined in order."""
    signatures = [d.signature for d in deltas if d.signature is not None]
    redacted = [d.redacted for d in deltas if d.redacted is not None]
    return ReasoningPart(
        text="".join(d.text for d in deltas),
        signature="".join(signatures) if signatures else None,
        redacted="".join(redacted) if redacted else None,
        provider=next((d.provider for d in deltas if d.provider), None),
    )


def _merge(into: PartMeta, meta: PartMeta) -> PartMeta:
    """``into`` with ``meta``'s namespaces merged in (a new mapping: chunks stay untouched)."""
    merged = dict(into)
    for namespace, data in meta.items():
        merged[namespace] = {**merged.get(namespace, {}), **data}
    return merged
