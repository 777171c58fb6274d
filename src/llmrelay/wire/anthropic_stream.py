"""Anthropic's named stream events, both directions: decoded into chunks, encoded from chunks.

Pure and stateful: one instance per stream. :class:`AnthropicStreamDecoder` reads what the upstream
sends (``message_start``, ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``,
``ping``, ``error``); :class:`AnthropicStreamEncoder` writes the same sequence for the server's
Anthropic-compatible endpoint. Encoding canonical chunks and decoding the events again yields the
same aggregate, which the tests check.

Anthropic numbers content blocks across text and tools; canonical :class:`ToolCallDelta` indices
count tools only (0 for the first tool call), like OpenAI's, so the decoder keeps the mapping.
Thinking blocks stream as :class:`ReasoningDelta` fragments (``thinking_delta`` text, then one
``signature_delta``; a ``redacted_thinking`` block arrives whole), numbered among reasoning blocks
only, so the aggregate is a message that can be sent back next turn with every signature intact.
Event types Anthropic may add later are ignored, as its versioning policy asks of clients.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmrelay.errors import ConnectionFailed, UpstreamError
from llmrelay.types import ChatChunk, ReasoningDelta, ToolCallDelta, Usage
from llmrelay.wire.anthropic import (
    STOP_REASONS_OUT,
    BlockBody,
    UsageBody,
    decode_usage,
    encode_usage,
    finish_reason,
    message_id,
)
from llmrelay.wire.anthropic_errors import ErrorObject, error_from_type
from llmrelay.wire.call_ids import with_signature
from llmrelay.wire.sse import Event as SSEEvent


class _StartMessage(msgspec.Struct, frozen=True):
    id: str
    model: str
    usage: UsageBody = UsageBody()


class _MessageStart(msgspec.Struct, frozen=True):
    message: _StartMessage


class _BlockStart(msgspec.Struct, frozen=True):
    index: int
    content_block: BlockBody


class _Delta(msgspec.Struct, frozen=True):
    type: str
    text: str = ""
    partial_json: str = ""
    thinking: str = ""
    signature: str = ""


class _BlockDelta(msgspec.Struct, frozen=True):
    index: int
    delta: _Delta


class _StopDelta(msgspec.Struct, frozen=True):
    stop_reason: str | None = None


class _DeltaUsage(msgspec.Struct, frozen=True):
    """Cumulative counts; input fields appear only when they changed since ``message_start``."""

    output_tokens: int = 0
    input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _MessageDelta(msgspec.Struct, frozen=True):
    delta: _StopDelta
    usage: _DeltaUsage = _DeltaUsage()


class _ErrorEvent(msgspec.Struct, frozen=True):
    error: ErrorObject


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "message_start": msgspec.json.Decoder(_MessageStart),
    "content_block_start": msgspec.json.Decoder(_BlockStart),
    "content_block_delta": msgspec.json.Decoder(_BlockDelta),
    "message_delta": msgspec.json.Decoder(_MessageDelta),
    "error": msgspec.json.Decoder(_ErrorEvent),
}

_TEXT, _TOOL, _ANSWER, _THINK = "text", "tool", "answer", "think"
_ANTHROPIC = "anthropic"  # the wire format that signs thinking blocks (``provider`` is the target's name)


class AnthropicStreamDecoder:
    """Feed ``(event, data)`` pairs from :class:`~llmrelay.wire.sse.SSEDecoder`, get chunks.

    ``json_tool`` names the forced answer tool (:func:`~llmrelay.wire.anthropic.answer_tool`): its
    input streams out as text. ``id`` and ``model`` are known once ``message_start`` was fed. An
    ``error`` event raises the canonical error for its type; :meth:`finish` raises
    :class:`ConnectionFailed` when the stream ended before ``message_stop``.
    """

    def __init__(self, *, json_tool: str | None = None, provider: str = "anthropic") -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.done = False
        self._json_tool = json_tool
        self._provider = provider
        self._start_usage = UsageBody()
        self._blocks: dict[int, tuple[str, int]] = {}
        self._tools = 0
        self._thoughts = 0

    def feed_event(self, event: SSEEvent) -> list[ChatChunk]:
        """:meth:`feed` for a whole SSE event (for batch decoding)."""
        return self.feed(event.event, event.data)

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        decoder = _DECODERS.get(event)
        if decoder is None:
            if event == "message_stop":
                self.done = True
            return []  # ping, content_block_stop, and event types added after this was written
        try:
            payload = decoder.decode(data)
        except msgspec.DecodeError as err:
            raise UpstreamError(
                f"{self._provider} sent an invalid {event} event: {err}", provider=self._provider
            ) from err
        if isinstance(payload, _ErrorEvent):
            raise error_from_type(
                payload.error.type, payload.error.message, status=200, provider=self._provider
            )
        if isinstance(payload, _MessageStart):
            self.id, self.model = payload.message.id, payload.message.model
            self._start_usage = payload.message.usage
            return []
        if isinstance(payload, _BlockStart):
            return self._block_start(payload)
        if isinstance(payload, _BlockDelta):
            return self._block_delta(payload)
        return self._message_delta(payload)

    def finish(self) -> None:
        """Call once the byte stream has ended."""
        if not self.done:
            raise ConnectionFailed(
                f"{self._provider} stream ended before message_stop", provider=self._provider
            )

    def _block_start(self, event: _BlockStart) -> list[ChatChunk]:
        block = event.content_block
        if block.type == "text":
            self._blocks[event.index] = (_TEXT, 0)
            return [ChatChunk(text=block.text)] if block.text else []
        if block.type in ("thinking", "redacted_thinking"):
            return self._thinking_start(event.index, block)
        if block.type != "tool_use":
            return []  # server-tool blocks have no canonical form
        if block.name == self._json_tool:
            self._blocks[event.index] = (_ANSWER, 0)
            return []
        tool = self._tools
        self._tools += 1
        self._blocks[event.index] = (_TOOL, tool)
        return [ChatChunk(tool_calls=(ToolCallDelta(index=tool, id=block.id, name=block.name),))]

    def _thinking_start(self, index: int, block: BlockBody) -> list[ChatChunk]:
        thought = self._thoughts
        self._thoughts += 1
        self._blocks[index] = (_THINK, thought)
        if block.type == "redacted_thinking":
            delta = ReasoningDelta(index=thought, redacted=block.data or "", provider=_ANTHROPIC)
        else:
            # The start block carries empty thinking and signature; both follow as deltas.
            delta = ReasoningDelta(
                index=thought, text=block.thinking, signature=block.signature or None, provider=_ANTHROPIC
            )
        return [ChatChunk(reasoning=(delta,))]

    def _block_delta(self, event: _BlockDelta) -> list[ChatChunk]:
        kind, tool = self._blocks.get(event.index, ("", 0))
        delta = event.delta
        if delta.type == "text_delta" and kind == _TEXT and delta.text:
            return [ChatChunk(text=delta.text)]
        if kind == _THINK and delta.type == "thinking_delta" and delta.thinking:
            return [ChatChunk(reasoning=(ReasoningDelta(index=tool, text=delta.thinking),))]
        if kind == _THINK and delta.type == "signature_delta" and delta.signature:
            return [ChatChunk(reasoning=(ReasoningDelta(index=tool, signature=delta.signature),))]
        if delta.type != "input_json_delta" or not delta.partial_json:
            return []
        if kind == _ANSWER:
            return [ChatChunk(text=delta.partial_json)]
        if kind == _TOOL:
            call = ToolCallDelta(index=tool, arguments=delta.partial_json)
            return [ChatChunk(tool_calls=(call,))]
        return []

    def _message_delta(self, event: _MessageDelta) -> list[ChatChunk]:
        start, delta = self._start_usage, event.usage
        usage = decode_usage(
            UsageBody(
                input_tokens=start.input_tokens if delta.input_tokens is None else delta.input_tokens,
                output_tokens=delta.output_tokens,
                cache_read_input_tokens=_first(delta.cache_read_input_tokens, start.cache_read_input_tokens),
                cache_creation_input_tokens=_first(
                    delta.cache_creation_input_tokens, start.cache_creation_input_tokens
                ),
            )
        )
        reason = finish_reason(event.delta.stop_reason, called_tools=self._tools > 0)
        return [ChatChunk(finish_reason=reason), ChatChunk(usage=usage)]


def _first(value: int | None, fallback: int | None) -> int | None:
    return value if value is not None else fallback


Event = tuple[str, dict[str, Any]]


class AnthropicStreamEncoder:
    """Canonical chunks in, Anthropic's named events out, in Anthropic's order.

    ``message_start`` goes out before the first block; each text run or tool call is one block
    (``content_block_start``, deltas, ``content_block_stop``); :meth:`finish` sends
    ``message_delta`` (stop reason and usage, which canonical streams deliver last) and
    ``message_stop``. ``input_tokens`` is what ``message_start`` reports (an estimate, or 0):
    the exact counts follow in ``message_delta``'s usage, which Anthropic clients read last.
    """

    def __init__(self, *, id: str, model: str, input_tokens: int = 0) -> None:
        self._id = message_id(id)
        self._model = model
        self._input_tokens = input_tokens
        self._started = False
        self._open: int | None = None
        self._open_is_text = False
        self._next_block = 0
        self._tool_blocks: dict[int, int] = {}
        self._thought_blocks: dict[int, int | None] = {}  # None: another provider's, left out
        self._stop_reason: str | None = None
        self._usage = Usage()

    def feed(self, chunk: ChatChunk) -> list[Event]:
        events = self._start()
        for thought in chunk.reasoning:
            self._reasoning(thought, events)
        if chunk.text:
            index = self._open if self._open_is_text else None
            if index is None:
                index = self._open_block({"type": "text", "text": ""}, events, is_text=True)
            events.append(_delta(index, {"type": "text_delta", "text": chunk.text}))
        for call in chunk.tool_calls:
            if call.index not in self._tool_blocks:
                block = {
                    "type": "tool_use",
                    "id": with_signature(call.id, call.meta)
                    if call.id
                    else f"toolu_{self._id[4:]}_{call.index}",
                    "name": call.name or "",
                    "input": {},
                }
                self._tool_blocks[call.index] = self._open_block(block, events, is_text=False)
            if call.arguments:
                # Fragments of an earlier (closed) call keep its block index; clients accumulate
                # deltas by index, so nothing is lost if an upstream interleaves calls.
                delta = {"type": "input_json_delta", "partial_json": call.arguments}
                events.append(_delta(self._tool_blocks[call.index], delta))
        if chunk.finish_reason is not None:
            events += self._close_block()
            self._stop_reason = STOP_REASONS_OUT[chunk.finish_reason]
        if chunk.usage is not None:
            self._usage = chunk.usage
        return events

    def _reasoning(self, thought: ReasoningDelta, events: list[Event]) -> None:
        """A thinking block's start or deltas; another provider's reasoning is left out."""
        if thought.index not in self._thought_blocks:
            if thought.provider != _ANTHROPIC:
                self._thought_blocks[thought.index] = None
                return
            block: dict[str, Any] = (
                {"type": "redacted_thinking", "data": thought.redacted}
                if thought.redacted is not None
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            self._thought_blocks[thought.index] = self._open_block(block, events, is_text=False)
        index = self._thought_blocks[thought.index]
        if index is None:
            return
        if thought.text:
            events.append(_delta(index, {"type": "thinking_delta", "thinking": thought.text}))
        if thought.signature:
            events.append(_delta(index, {"type": "signature_delta", "signature": thought.signature}))

    def finish(self) -> list[Event]:
        """The closing events, after the last chunk."""
        events = self._start() + self._close_block()
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self._stop_reason or "end_turn",
                        "stop_sequence": None,
                    },
                    "usage": encode_usage(self._usage),
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _open_block(self, block: dict[str, Any], events: list[Event], *, is_text: bool) -> int:
        """Close the open block, start ``block`` (appending to ``events``), return its index."""
        events += self._close_block()
        index = self._next_block
        self._next_block += 1
        self._open, self._open_is_text = index, is_text
        start = {"type": "content_block_start", "index": index, "content_block": block}
        events.append(("content_block_start", start))
        return index

    def _close_block(self) -> list[Event]:
        if self._open is None:
            return []
        index, self._open, self._open_is_text = self._open, None, False
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]


def _delta(index: int, delta: dict[str, Any]) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
