"""OpenAI streamed chat completions: ``chat.completion.chunk`` <-> :class:`ChatChunk`, both ways.

Pure: the caller feeds SSE ``data`` strings (decoded by :class:`~llmrelay.wire.sse.SSEDecoder`) and
wraps what the encoder returns with :func:`~llmrelay.wire.sse.encode_data`.

Upstream (:class:`ChatStreamDecoder`): one upstream chunk becomes at most one canonical chunk; the
role-only opening chunk and keep-alive chunks become none. Tool-call fragments keep their ``index``
(the aggregate in :mod:`llmrelay.streams` joins them). Only choice 0 is read. The usage chunk (empty
``choices``, asked for with ``stream_options.include_usage``) becomes a chunk carrying ``usage``;
servers that attach usage to every chunk simply update it. ``data: [DONE]`` is the terminal
event: ``done`` stays false until it arrives, so the provider tells a finished stream from a
dropped one.
An ``{"error": ...}`` payload raises the canonical error for its type.

Downstream (:class:`ChatStreamEncoder`): the server's side, one id and ``created`` for the whole
stream, ``role`` in the first chunk, the usage chunk only when the client asked for it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmrelay.errors import UpstreamError
from llmrelay.types import ChatChunk, FinishReason, ToolCallDelta
from llmrelay.wire.call_ids import with_signature
from llmrelay.wire.openai import (
    WireFunction,
    WireUsage,
    decode_finish_reason,
    decode_usage,
    encode_usage,
)
from llmrelay.wire.openai_errors import decode_stream_error
from llmrelay.wire.sse import Event

DONE = "[DONE]"


class _WireCallDelta(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: WireFunction | None = None


class _WireDelta(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_WireCallDelta] | None = None
    function_call: WireFunction | None = None


class _WireChunkChoice(msgspec.Struct):
    index: int = 0
    delta: _WireDelta | None = None
    finish_reason: str | None = None


class _WireChunk(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    created: float | None = None
    choices: list[_WireChunkChoice] | None = None
    usage: WireUsage | None = None
    error: Any = None


_chunk_decoder = msgspec.json.Decoder(_WireChunk)


class ChatStreamDecoder:
    """Stateful: remembers the stream's ``id``, ``model`` and ``created`` from its first chunk."""

    def __init__(self, *, provider: str = "openai") -> None:
        self.provider = provider
        self.id = ""
        self.model = ""
        self.created: int | None = None
        self.done = False

    def feed_event(self, event: Event) -> tuple[ChatChunk, ...]:
        """:meth:`feed` for a whole SSE event, as zero or one chunk (for batch decoding)."""
        chunk = self.feed(event.data)
        return () if chunk is None else (chunk,)

    def feed(self, data: str) -> ChatChunk | None:
        """Decode one SSE ``data`` payload; ``None`` when it carries nothing for the caller."""
        if self.done:
            return None
        if data.startswith(DONE):
            self.done = True
            return None
        try:
            wire = _chunk_decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as err:
            raise UpstreamError(
                f"{self.provider} sent a malformed stream chunk: {err}", provider=self.provider
            ) from err
        if wire.error is not None:
            raise decode_stream_error(wire.error, provider=self.provider)
        self.id = self.id or wire.id or ""
        self.model = self.model or wire.model or ""
        if self.created is None and wire.created is not None:
            self.created = int(wire.created)
        text = ""
        calls: list[ToolCallDelta] = []
        finish: FinishReason | None = None
        for choice in wire.choices or ():
            if choice.index != 0:
                continue
            if choice.delta is not None:
                text += _delta_text(choice.delta)
                calls.extend(_delta_calls(choice.delta))
            finish = decode_finish_reason(choice.finish_reason) or finish
        usage = decode_usage(wire.usage) if wire.usage is not None else None
        if not (text or calls or finish or usage):
            return None
        return ChatChunk(text=text, tool_calls=tuple(calls), finish_reason=finish, usage=usage)


def _delta_text(delta: _WireDelta) -> str:
    return (delta.content or "") + (delta.refusal or "")


def _delta_calls(delta: _WireDelta) -> list[ToolCallDelta]:
    calls = [
        ToolCallDelta(
            index=call.index,
            id=call.id,
            name=call.function.name if call.function else None,
            arguments=(call.function.arguments or "") if call.function else "",
        )
        for call in delta.tool_calls or ()
    ]
    if delta.function_call is not None and not calls:
        legacy = delta.function_call
        calls.append(ToolCallDelta(index=0, name=legacy.name, arguments=legacy.arguments or ""))
    return calls


class ChatStreamEncoder:
    """Canonical chunks as ``chat.completion.chunk`` objects for an OpenAI client.

    ``include_usage`` mirrors the client's ``stream_options.include_usage``: OpenAI only sends the
    usage chunk (``choices: []``) when asked, and some clients choke on an unexpected one.
    """

    def __init__(self, *, id: str, model: str, created: int, include_usage: bool = False) -> None:
        self.id = id
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self._started = False
        self._text_around: tuple[bytes, bytes] | None = None

    def encode_json(self, chunk: ChatChunk) -> list[bytes]:
        """:meth:`encode`, serialised: one JSON document per chunk object.

        Most chunks of a stream carry text only; their JSON differs only in the text, so it is
        spliced into the bytes around it (taken once from a real encoding, so both paths agree)
        instead of building and encoding the same dicts for every chunk.
        """
        if chunk.text and self._started and not (chunk.tool_calls or chunk.finish_reason or chunk.usage):
            before, after = self._text_around or self._text_template()
            return [before + msgspec.json.encode(chunk.text) + after]
        return [msgspec.json.encode(c) for c in self.encode(chunk)]

    def _text_template(self) -> tuple[bytes, bytes]:
        marker = "\u0000llmrelay-text\u0000"
        choice = {"index": 0, "delta": {"content": marker}, "logprobs": None, "finish_reason": None}
        encoded = msgspec.json.encode(self._chunk([choice]))
        before, _, after = encoded.partition(msgspec.json.encode(marker))
        self._text_around = (before, after)
        return self._text_around

    def encode(self, chunk: ChatChunk) -> list[dict[str, Any]]:
        """Zero to two chunk objects: the choice delta (if any), then the usage chunk (if asked)."""
        out: list[dict[str, Any]] = []
        delta: dict[str, Any] = {}
        if not self._started:
            delta["role"] = "assistant"
            self._started = True
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            delta["tool_calls"] = [_encode_call_delta(call) for call in chunk.tool_calls]
        if chunk.text or chunk.tool_calls or chunk.finish_reason or "role" in delta:
            choice = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": chunk.finish_reason,
            }
            out.append(self._chunk([choice]))
        if chunk.usage is not None and self.include_usage:
            out.append(self._chunk([], usage=encode_usage(chunk.usage)))
        return out

    def _chunk(self, choices: list[dict[str, Any]], *, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        out = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out


def _encode_call_delta(call: ToolCallDelta) -> dict[str, Any]:
    out: dict[str, Any] = {"index": call.index}
    if call.id is not None:
        out["id"] = with_signature(call.id, call.meta)
        out["type"] = "function"
    function: dict[str, Any] = {"arguments": call.arguments}
    if call.name is not None:
        function["name"] = call.name
    out["function"] = function
    return out
