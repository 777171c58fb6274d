"""Gemini ``streamGenerateContent?alt=sse`` events -> canonical :class:`ChatChunk` values (pure).

Part of the :mod:`llmrelay.wire.gemini` codec. Each SSE ``data:`` is a whole
``GenerateContentResponse`` holding the next slice of the answer: text deltas, and function calls
that always arrive complete (so each becomes one :class:`ToolCallDelta` with id, name and all its
arguments). Every event repeats the running ``usageMetadata``; only the last one is final.

Thought parts stream as :class:`ReasoningDelta` fragments of one reasoning part until a signed
one closes it (a signature belongs to the thought it ends, so the next thought starts a new part);
a signed text part's ``thoughtSignature`` rides on the chunk's ``meta``.

Gemini sends no terminal event such as OpenAI's ``[DONE]``: the answer is complete when a candidate
carries a ``finishReason``. :meth:`GeminiStreamDecoder.end` therefore raises
:class:`ConnectionFailed` for a stream that stopped before one (a dropped connection must never look
like a short answer), and otherwise emits the usage chunk last, as the canonical stream expects.
An ``{"error": {...}}`` event inside a 200 stream raises the canonical error for its status.
"""

from __future__ import annotations

from llmrelay.errors import ConnectionFailed
from llmrelay.types import ChatChunk, ReasoningDelta, ToolCallDelta, Usage
from llmrelay.wire.gemini_errors import error_from_status
from llmrelay.wire.gemini_response import (
    PROVIDER,
    candidate_parts,
    finish_reason,
    first_candidate,
    parse_response,
    usage_from,
)
from llmrelay.wire.sse import Event


class GeminiStreamDecoder:
    """Feed each SSE event's data, get chunks; call :meth:`end` when the HTTP body ends.

    ``response_id`` and ``model`` are filled from the events (``model`` starts as the target's own
    model and becomes the upstream's ``modelVersion``) so the provider can label its stream.
    """

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.response_id: str | None = None
        self.finished = False
        self._calls = 0
        self._thought = 0
        self._emitted = False
        self._usage: Usage | None = None

    def feed_event(self, event: Event) -> list[ChatChunk]:
        """:meth:`feed` for a whole SSE event (for batch decoding)."""
        return self.feed(event.data)

    def feed(self, data: str) -> list[ChatChunk]:
        event = parse_response(data)
        if event.error is not None:
            status = event.error.code or 500
            # In-band errors come without headers, so `now` (for Retry-After dates) is unused.
            raise error_from_status(status, event.error, headers={}, provider=PROVIDER, now=0.0)
        self.response_id = self.response_id or event.response_id
        self.model = event.model_version or self.model
        if event.usage_metadata is not None:
            self._usage = usage_from(event.usage_metadata)
        if not event.candidates and event.prompt_feedback is None:
            return []  # a usage-only event
        candidate = first_candidate(event)
        parts = candidate_parts(candidate, response_id=self.response_id or "", first_index=self._calls)
        text, calls = parts.text, parts.calls
        chunks: list[ChatChunk] = []
        reasoning = []
        for thought in parts.reasoning:
            reasoning.append(
                ReasoningDelta(
                    index=self._thought, text=thought.text, signature=thought.signature, provider=PROVIDER
                )
            )
            if thought.signature is not None:
                self._thought += 1
        if text or calls or reasoning or parts.text_meta:
            deltas = tuple(
                ToolCallDelta(index=self._calls + i, id=c.id, name=c.name, arguments=c.arguments, meta=c.meta)
                for i, c in enumerate(calls)
            )
            self._calls += len(calls)
            self._emitted = self._emitted or bool(text or calls)
            chunks.append(
                ChatChunk(text=text, tool_calls=deltas, reasoning=tuple(reasoning), meta=parts.text_meta)
            )
        reason = candidate.finish_reason
        if reason is not None:
            finish = finish_reason(reason, has_content=self._emitted, has_calls=self._calls > 0)
            self.finished = True
            chunks.append(ChatChunk(finish_reason=finish))
        return chunks

    def end(self) -> list[ChatChunk]:
        """The closing usage chunk; raises if the stream ended before its final event."""
        if not self.finished:
            raise ConnectionFailed(
                f"{PROVIDER} stream ended before its final event (connection dropped)",
                provider=PROVIDER,
            )
        return [ChatChunk(usage=self._usage)] if self._usage is not None else []
