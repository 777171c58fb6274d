"""Reply decoding of the Gemini codec on recorded payloads: unary, streamed and embeddings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmrelay.errors import ConnectionFailed, ContentFiltered, Overloaded, UpstreamError
from llmrelay.types import ChatChunk, ToolCallDelta, Usage
from llmrelay.wire.gemini import (
    GeminiStreamDecoder,
    decode_chat_response,
    decode_embedding_response,
)
from llmrelay.wire.sse import SSEDecoder

PAYLOADS = Path(__file__).parent / "payloads" / "gemini"


def _raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def _events(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(_raw(name))
    return events


def _sse(events: list[dict[str, Any]]) -> bytes:
    """The bytes Google sends: one ``data:`` line per event, CRLF-separated."""
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


def _stream(name: str, *, piece: int = 7) -> tuple[list[ChatChunk], GeminiStreamDecoder]:
    """Decode a recorded stream fed in small byte pieces (splits land anywhere)."""
    raw = _sse(_events(name))
    sse = SSEDecoder()
    decoder = GeminiStreamDecoder(model="gemini-target")
    chunks: list[ChatChunk] = []
    for i in range(0, len(raw), piece):
        for event in sse.feed(raw[i : i + piece]):
            chunks.extend(decoder.feed(event.data))
    for event in sse.flush():
        chunks.extend(decoder.feed(event.data))
    chunks.extend(decoder.end())
    return chunks, decoder


# -- unary ---------------------------------------------------------------------------------------


def test_text_reply() -> None:
    response = decode_chat_response(_raw("generate_text.json"), model="target", created=123)
    assert response.text == "The capital of France is Paris."
    assert response.id == "m4G2aNv7Ku2A1MkP3p6t2AU"
    assert response.model == "gemini-2.5-flash"
    assert response.created == 123
    assert response.finish_reason == "stop"
    assert response.provider == "gemini"
    assert response.tool_calls == ()
    # Thoughts are billed as output: 7 candidates + 26 thoughts.
    assert response.usage == Usage(input_tokens=8, output_tokens=33, reasoning_tokens=26)


def test_thought_parts_stay_out_of_the_text_and_cached_tokens_counted() -> None:
    response = decode_chat_response(_raw("generate_thinking_cached.json"), model="target")
    assert response.text == "42"
    assert response.message.content[0].text.startswith("**Weighing the options**")  # type: ignore[union-attr]
    assert response.usage == Usage(
        input_tokens=4120, output_tokens=317, cached_input_tokens=4096, reasoning_tokens=316
    )


def test_function_calls_get_stable_synthesised_ids() -> None:
    body = _raw("generate_function_calls.json")
    response = decode_chat_response(body, model="target")
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    calls = response.tool_calls
    assert [c.name for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c.arguments) for c in calls] == [
        {"city": "Paris", "unit": "celsius"},
        {"city": "London", "unit": "celsius"},
    ]
    assert calls[0].id.startswith("call_")
    assert calls[0].id != calls[1].id
    again = decode_chat_response(body, model="target")
    assert [c.id for c in again.tool_calls] == [c.id for c in calls]


def test_upstream_call_id_is_kept_when_present() -> None:
    body = json.loads(_raw("generate_function_calls.json"))
    body["candidates"][0]["content"]["parts"][0]["functionCall"]["id"] = "upstream-id-1"
    response = decode_chat_response(json.dumps(body), model="target")
    assert response.tool_calls[0].id == "upstream-id-1"
    assert response.tool_calls[1].id.startswith("call_")


def test_max_tokens_is_length() -> None:
    response = decode_chat_response(_raw("generate_max_tokens.json"), model="target")
    assert response.finish_reason == "length"
    assert response.text == "Once upon a time, in a valley"


def test_model_falls_back_to_the_target_model() -> None:
    body = json.loads(_raw("generate_text.json"))
    del body["modelVersion"], body["responseId"]
    response = decode_chat_response(json.dumps(body), model="target")
    assert response.model == "target"
    assert response.id.startswith("gemini-")


def test_blocked_prompt_raises_content_filtered() -> None:
    with pytest.raises(ContentFiltered, match="SAFETY") as info:
        decode_chat_response(_raw("blocked_prompt.json"), model="target")
    assert info.value.provider == "gemini"


def test_safety_finish_without_content_raises_content_filtered() -> None:
    with pytest.raises(ContentFiltered, match="SAFETY"):
        decode_chat_response(_raw("finish_safety.json"), model="target")


def test_safety_finish_after_some_text_keeps_it_as_content_filter() -> None:
    body = json.loads(_raw("finish_safety.json"))
    body["candidates"][0]["content"]["parts"] = [{"text": "Partial answer"}]
    response = decode_chat_response(json.dumps(body), model="target")
    assert response.finish_reason == "content_filter"
    assert response.text == "Partial answer"


def test_malformed_function_call_is_a_retryable_upstream_error() -> None:
    body = {"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}]}
    with pytest.raises(UpstreamError) as info:
        decode_chat_response(json.dumps(body), model="target")
    assert info.value.code == "malformed_function_call"


@pytest.mark.parametrize("body", [b"{not json", b'{"candidates": 3}', b"{}"])
def test_unreadable_or_empty_reply_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        decode_chat_response(body, model="target")


# -- streamed ------------------------------------------------------------------------------------


@pytest.mark.parametrize("piece", [1, 7, 10_000])
def test_streamed_text(piece: int) -> None:
    chunks, decoder = _stream("stream_text.json", piece=piece)
    assert "".join(c.text for c in chunks) == "The capital of France is Paris."
    assert [c.text for c in chunks if c.text] == ["The capital", " of France is", " Paris."]
    assert chunks[-2] == ChatChunk(finish_reason="stop")
    assert chunks[-1] == ChatChunk(usage=Usage(input_tokens=8, output_tokens=33, reasoning_tokens=26))
    assert decoder.response_id == "qYi2aIL2Hr2D1MkP5rPqqQk"
    assert decoder.model == "gemini-2.5-flash"


def test_streamed_function_calls_arrive_whole_with_running_indices() -> None:
    chunks, _ = _stream("stream_function_calls.json")
    assert chunks[0] == ChatChunk(text="Let me look that up.")
    deltas = chunks[1].tool_calls
    assert [(d.index, d.name) for d in deltas] == [(0, "get_weather"), (1, "get_time")]
    assert json.loads(deltas[0].arguments) == {"city": "Paris", "unit": "celsius"}
    assert json.loads(deltas[1].arguments) == {"timezone": "Europe/Paris"}
    assert all(isinstance(d, ToolCallDelta) and d.id and d.id.startswith("call_") for d in deltas)
    assert chunks[2] == ChatChunk(finish_reason="tool_calls")
    assert chunks[3].usage == Usage(input_tokens=61, output_tokens=31)


def test_streamed_call_ids_match_the_unary_rule() -> None:
    """The same answer gets the same ids whether it was streamed or not."""
    unary = _events("stream_function_calls.json")[1]  # the event holding both calls
    response = decode_chat_response(json.dumps(unary), model="target")
    chunks, _ = _stream("stream_function_calls.json")
    assert [d.id for d in chunks[1].tool_calls] == [c.id for c in response.tool_calls]


def test_streamed_safety_stop_after_text_is_content_filter() -> None:
    chunks, _ = _stream("stream_safety.json")
    assert chunks[0].text == "Here is the first part of the story"
    assert chunks[1] == ChatChunk(finish_reason="content_filter")


def test_streamed_safety_stop_before_any_text_raises() -> None:
    events = _events("stream_safety.json")[1:]
    decoder = GeminiStreamDecoder(model="m")
    with pytest.raises(ContentFiltered):
        decoder.feed(json.dumps(events[0]))


def test_streamed_blocked_prompt_raises() -> None:
    with pytest.raises(ContentFiltered, match="PROHIBITED_CONTENT"):
        _stream("stream_blocked_prompt.json")


def test_error_event_inside_a_200_stream_raises_its_canonical_error() -> None:
    first, error = _events("stream_error_event.json")
    decoder = GeminiStreamDecoder(model="m")
    assert decoder.feed(json.dumps(first)) == [ChatChunk(text="Sure, here")]
    with pytest.raises(Overloaded) as info:
        decoder.feed(json.dumps(error))
    assert info.value.status == 503


def test_stream_that_ends_without_a_finish_reason_is_a_dropped_connection() -> None:
    decoder = GeminiStreamDecoder(model="m")
    for event in _events("stream_text.json")[:2]:
        decoder.feed(json.dumps(event))
    with pytest.raises(ConnectionFailed):
        decoder.end()


def test_usage_only_event_after_the_finish_updates_the_final_usage() -> None:
    decoder = GeminiStreamDecoder(model="m")
    for event in _events("stream_text.json"):
        decoder.feed(json.dumps(event))
    assert decoder.feed(json.dumps({"usageMetadata": {"promptTokenCount": 9}})) == []
    assert decoder.end() == [ChatChunk(usage=Usage(input_tokens=9))]


# -- embeddings ----------------------------------------------------------------------------------


def test_embedding_reply() -> None:
    response = decode_embedding_response(_raw("embed_batch.json"), model="gemini-embedding-001")
    assert response.vectors == [[0.0123, -0.0456, 0.0789, 0.0012], [-0.0311, 0.0275, 0.0044, -0.0968]]
    assert response.model == "gemini-embedding-001"
    assert response.provider == "gemini"


def test_unreadable_embedding_reply_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        decode_embedding_response(b'{"embeddings": [{"values": "x"}]}', model="m")
