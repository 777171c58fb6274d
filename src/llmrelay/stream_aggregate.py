"""The aggregate of a stream: its chunks folded into the one answer they add up to.

Text is concatenated; tool-call fragments are joined by their ``index`` (ids and names arrive once,
arguments in pieces); the last finish reason and usage win. :class:`~llmrelay.streams.ChatStream`
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
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None

    def add(self, chunk: ChatChunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.tool_calls:
            self._add_calls(chunk.tool_calls)
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

    def response(
        self, *, id: str, model: str, created: int, provider: str | None, target: str | None
    ) -> ChatResponse:
        parts: list[ContentPart] = []
        if self.text:
            parts.append(TextPart(text="".join(self.text)))
        for index in sorted(self.calls):
            parts.append(
                ToolCallPart(
                    id=self.call_ids.get(index, f"call_{index}"),
                    name=self.call_names.get(index, ""),
                    arguments="".join(self.calls[index]) or "{}",
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
