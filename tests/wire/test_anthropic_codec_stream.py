"""Anthropic named stream events: decoding recorded streams, encoding chunks, and the round trip."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.errors import ConnectionFailed, Overloaded, RateLimited, UpstreamError
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatResponse, ReasoningDelta, ToolCallDelta, ToolCallPart, Usage
from llmrelay.wire.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from llmrelay.wire.sse import SSEDecoder
from tests.fakes.anthropic_upstream import Event, message_body, message_events, sse

PAYLOADS = Path(__file__).parent / "payloads" / "anthropic"


def recorded(name: str) -> list[Event]:
    return [(e["event"], e["data"]) for e in json.loads((PAYLOADS / name).read_text())]


def decode(
    wire: bytes, *, step: int | None = None, json_tool: str | None = None
) -> tuple[list[ChatChunk], AnthropicStreamDecoder]:
    """Decode SSE bytes fed in ``step``-sized pieces (all at once by default)."""
    decoder = AnthropicStreamDecoder(json_tool=json_tool)
    sse_decoder = SSEDecoder()
    chunks: list[ChatChunk] = []
    size = step or len(wire) or 1
    for i in range(0, len(wire), size):
        for event in sse_decoder.feed(wire[i : i + size]):
            chunks += decoder.feed(event.event, event.data)
    for event in sse_decoder.flush():
        chunks += decoder.feed(event.event, event.data)
    decoder.finish()
    return chunks, decoder


async def aggregate(chunks: Iterable[ChatChunk]) -> ChatResponse:
    """The canonical aggregate, folded by the real :class:`ChatStream`."""

    async def source() -> AsyncGenerator[ChatChunk, None]:
        for chunk in chunks:
            yield chunk

    stream = await ChatStream.open_chunks(source(), id="s", model="m", created=0)
    return await stream.collect()


# -- decoding --------------------------------------------------------------------------------


def test_text_stream() -> None:
    chunks, decoder = decode(sse(recorded("stream_text.json")))
    assert [c.text for c in chunks if c.text] == ["Hello", "! How can", " I help?"]
    assert decoder.id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    assert decoder.model == "claude-haiku-4-5-20251001"
    assert chunks[-2] == ChatChunk(finish_reason="stop")
    assert chunks[-1] == ChatChunk(usage=Usage(input_tokens=125, output_tokens=15, cached_input_tokens=100))


def test_cache_writes_are_their_own_subset_of_the_input() -> None:
    events = recorded("stream_text.json")
    start = events[0][1]["message"]["usage"]
    start["cache_creation_input_tokens"] = 40
    chunks, _ = decode(sse(events))
    assert chunks[-1] == ChatChunk(
        usage=Usage(input_tokens=165, output_tokens=15, cached_input_tokens=100, cache_write_input_tokens=40)
    )


@pytest.mark.parametrize("step", [1, 7, 64])
def test_byte_splits_do_not_change_the_result(step: int) -> None:
    wire = sse(recorded("stream_tool_use.json"))
    assert decode(wire, step=step)[0] == decode(wire)[0]


async def test_tool_use_stream_counts_tools_from_zero() -> None:
    chunks, _ = decode(sse(recorded("stream_tool_use.json")))
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0] == ToolCallDelta(index=0, id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather")
    assert {d.index for d in deltas} == {0, 1}
    response = await aggregate(chunks)
    assert response.text == "Okay, let's check the weather for San Francisco, CA:"
    assert response.tool_calls == (
        ToolCallPart(
            id="toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            name="get_weather",
            arguments='{"location": "San Francisco, CA", "unit": "fahrenheit"}',
        ),
        ToolCallPart(
            id="toolu_01CvFQ8sJ4n5hJuV1x9ZbXcT",
            name="get_time",
            arguments='{"timezone": "America/Los_Angeles"}',
        ),
    )
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=472, output_tokens=89)


def test_thinking_blocks_stay_out_of_the_text_and_delta_usage_wins() -> None:
    chunks, _ = decode(sse(recorded("stream_thinking.json")))
    assert "".join(c.text for c in chunks) == "27 * 453 = 12,231"
    assert "".join(r.text for c in chunks for r in c.reasoning) == "27 * 453 = 12231"
    assert chunks[-1].usage == Usage(input_tokens=30, output_tokens=120)


async def test_answer_tool_streams_as_text() -> None:
    message = message_body(
        [{"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {"a": [1, 2]}}],
        stop_reason="tool_use",
    )
    chunks, _ = decode(sse(message_events(message)), json_tool="json_response")
    response = await aggregate(chunks)
    assert response.tool_calls == ()
    assert json.loads(response.text) == {"a": [1, 2]}
    assert response.finish_reason == "stop"


def test_error_event_raises_the_canonical_error_after_earlier_chunks() -> None:
    decoder = AnthropicStreamDecoder()
    seen: list[ChatChunk] = []
    with pytest.raises(Overloaded) as info:
        for name, data in recorded("stream_error_overloaded.json"):
            seen += decoder.feed(name, json.dumps(data))
    assert [c.text for c in seen] == ["Partial"]
    assert info.value.message == "Overloaded"
    assert info.value.status == 529


def test_rate_limit_error_event() -> None:
    data = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    with pytest.raises(RateLimited):
        AnthropicStreamDecoder().feed("error", json.dumps(data))


def test_unknown_error_type_is_an_upstream_error() -> None:
    data = {"type": "error", "error": {"type": "brand_new_error", "message": "?"}}
    with pytest.raises(UpstreamError):
        AnthropicStreamDecoder().feed("error", json.dumps(data))


@pytest.mark.parametrize("cut", ["message_delta", "message_stop"])
def test_stream_cut_before_message_stop_raises(cut: str) -> None:
    events = recorded("stream_text.json")
    names = [name for name, _ in events]
    with pytest.raises(ConnectionFailed):
        decode(sse(events[: names.index(cut)]))


def test_unknown_events_are_ignored_and_bad_json_is_an_upstream_error() -> None:
    decoder = AnthropicStreamDecoder()
    assert decoder.feed("brand_new_event", '{"type": "brand_new_event"}') == []
    with pytest.raises(UpstreamError):
        decoder.feed("content_block_delta", "{not json")


# -- encoding --------------------------------------------------------------------------------


def names(events: list[Event]) -> list[str]:
    return [name for name, _ in events]


def encode(chunks: list[ChatChunk], **kwargs: Any) -> list[Event]:
    encoder = AnthropicStreamEncoder(id="chatcmpl-1", model="gpt-4o-mini", **kwargs)
    events: list[Event] = []
    for chunk in chunks:
        events += encoder.feed(chunk)
    return events + encoder.finish()


def test_encoder_emits_anthropic_order() -> None:
    events = encode(
        [
            ChatChunk(text="Let me "),
            ChatChunk(text="check."),
            ChatChunk(tool_calls=(ToolCallDelta(index=0, id="call_a", name="get_weather"),)),
            ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments='{"city":'),)),
            ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments=' "Paris"}'),)),
            ChatChunk(tool_calls=(ToolCallDelta(index=1, id="call_b", name="get_time"),)),
            ChatChunk(finish_reason="tool_calls"),
            ChatChunk(usage=Usage(input_tokens=50, output_tokens=20, cached_input_tokens=10)),
        ],
        input_tokens=48,
    )
    assert names(events) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == "msg_chatcmpl-1"
    assert start["usage"] == {"input_tokens": 48, "output_tokens": 0}
    assert [e[1]["index"] for e in events[1:11]] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert events[5][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "get_weather",
        "input": {},
    }
    assert events[11][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 40,
            "output_tokens": 20,
            "cache_read_input_tokens": 10,
            "cache_creation_input_tokens": 0,
        },
    }


def test_encoder_on_an_empty_stream_still_frames_a_message() -> None:
    events = encode([])
    assert names(events) == ["message_start", "message_delta", "message_stop"]
    assert events[1][1]["delta"]["stop_reason"] == "end_turn"


# -- round trip ------------------------------------------------------------------------------

_ARGS = st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=8))


@st.composite
def chunk_streams(draw: st.DrawFn) -> list[ChatChunk]:
    chunks: list[ChatChunk] = []
    for index, thought in enumerate(draw(st.lists(st.lists(st.text(min_size=1), max_size=3), max_size=2))):
        if draw(st.booleans()):  # a redacted block arrives whole
            chunks.append(
                ChatChunk(
                    reasoning=(ReasoningDelta(index=index, redacted="".join(thought), provider="anthropic"),)
                )
            )
            continue
        first, *rest = [*thought, ""]
        chunks.append(ChatChunk(reasoning=(ReasoningDelta(index=index, text=first, provider="anthropic"),)))
        chunks += [ChatChunk(reasoning=(ReasoningDelta(index=index, text=t),)) for t in rest if t]
        chunks.append(
            ChatChunk(reasoning=(ReasoningDelta(index=index, signature=draw(st.text(min_size=1))),))
        )
    chunks += [ChatChunk(text=t) for t in draw(st.lists(st.text(min_size=1), max_size=4))]
    for index, args in enumerate(draw(st.lists(_ARGS, max_size=3))):
        raw = json.dumps(args)
        cut = draw(st.integers(0, len(raw)))
        chunks.append(ChatChunk(tool_calls=(ToolCallDelta(index=index, id=f"t{index}", name="f"),)))
        chunks += [
            ChatChunk(tool_calls=(ToolCallDelta(index=index, arguments=part),))
            for part in (raw[:cut], raw[cut:])
            if part
        ]
    has_tools = any(c.tool_calls for c in chunks)
    finish = "tool_calls" if has_tools else draw(st.sampled_from(["stop", "length"]))
    usage = Usage(
        input_tokens=draw(st.integers(20, 1000)),  # at least both cache subsets below
        output_tokens=draw(st.integers(0, 1000)),
        cached_input_tokens=draw(st.integers(0, 10)),
        cache_write_input_tokens=draw(st.integers(0, 10)),
    )
    return [*chunks, ChatChunk(finish_reason=finish), ChatChunk(usage=usage)]


@settings(max_examples=60, deadline=None)
@given(chunk_streams())
async def test_round_trip_keeps_the_aggregate(chunks: list[ChatChunk]) -> None:
    decoded, decoder = decode(sse(encode(chunks)), step=5)
    assert decoder.id == "msg_chatcmpl-1"
    original, again = await aggregate(chunks), await aggregate(decoded)
    assert again.message == original.message
    assert again.finish_reason == original.finish_reason
    assert again.usage == original.usage
