"""One cached answer, as stored: the same JSON bytes in memory, SQLite and Redis.

An entry holds a whole answer (a streamed miss is stored as its aggregate, ``stream.final()``) and
when it was stored, on the wall clock, so every replica ages it alike. A streamed request that hits
is replayed from the whole answer as a proper stream (:func:`replay`): reasoning, text and tool
calls, then the finish reason, then the usage, the order providers stream them in.

``prompt`` and ``prefix`` are set for the semantic cache: the final user message and the hash of
everything else; with them a replica can rebuild its similarity index from shared entries.
"""

from __future__ import annotations

import msgspec

from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatChunk,
    ChatResponse,
    EmbeddingResponse,
    ReasoningDelta,
    ReasoningPart,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
)


class Entry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    stored_at: float
    """Wall-clock seconds (``clock.wall()``) when the answer was stored."""
    response: ChatResponse | None = None
    embedding: EmbeddingResponse | None = None
    prompt: str | None = None
    prefix: str | None = None


encode_entry = msgspec.json.Encoder().encode
decode_entry = msgspec.json.Decoder(Entry).decode

STORABLE = frozenset({"stop", "tool_calls"})
"""Finish reasons worth keeping: a ``length`` answer is truncated, a ``content_filter`` one is
withheld, and one without a reason did not say it was complete."""


def storable(response: ChatResponse) -> bool:
    return response.finish_reason in STORABLE


def replay(response: ChatResponse) -> ChatStream:
    """``response`` as a stream that has ended upstream (all chunks in hand, one batch)."""
    stream = ChatStream.replay(
        chunks_of(response),
        id=response.id,
        model=response.model,
        created=response.created,
        provider=response.provider,
    )
    stream.target = response.target
    stream.replayed = True
    return stream


def chunks_of(response: ChatResponse) -> list[ChatChunk]:
    """Chunks whose aggregate (:mod:`llmrelay.stream_aggregate`) is ``response`` again."""
    chunks: list[ChatChunk] = []
    reasoning = tuple(
        ReasoningDelta(index=i, text=p.text, signature=p.signature, redacted=p.redacted, provider=p.provider)
        for i, p in enumerate(p for p in response.message.content if isinstance(p, ReasoningPart))
    )
    if reasoning:
        chunks.append(ChatChunk(reasoning=reasoning))
    for part in response.message.content:
        if isinstance(part, TextPart):
            chunks.append(ChatChunk(text=part.text, meta=part.meta))
    calls = tuple(
        ToolCallDelta(index=i, id=p.id, name=p.name, arguments=p.arguments, meta=p.meta)
        for i, p in enumerate(p for p in response.message.content if isinstance(p, ToolCallPart))
    )
    if calls:
        chunks.append(ChatChunk(tool_calls=calls))
    chunks.append(ChatChunk(finish_reason=response.finish_reason))
    chunks.append(ChatChunk(usage=response.usage))
    return chunks
