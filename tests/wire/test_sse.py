import pytest

from llmrelay.wire.sse import Event, SSEDecoder, encode_data, encode_event


def decode_all(chunks: list[bytes]) -> list[Event]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.flush()


STREAM = b'event: a\ndata: {"x": 1}\n\n: comment\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n'


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(STREAM)])
def test_events_survive_any_split(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert decode_all(chunks) == [
        Event("a", '{"x": 1}'),
        Event("message", "line1\nline2"),
        Event("message", "[DONE]"),
    ]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_line_endings(newline: bytes) -> None:
    raw = b"event: e" + newline + b"data: d" + newline + newline
    assert decode_all([raw[:-1], raw[-1:]]) == [Event("e", "d")]


def test_utf8_split_inside_a_character() -> None:
    raw = "data: héllo ✓\n\n".encode()
    split = raw.index("✓".encode()) + 1
    assert decode_all([raw[:split], raw[split:]]) == [Event("message", "héllo ✓")]


def test_flush_dispatches_an_unterminated_event() -> None:
    assert decode_all([b"data: tail"]) == [Event("message", "tail")]


def test_field_without_space_and_unknown_fields() -> None:
    assert decode_all([b"data:x\nid: 7\nretry: 10\n\n"]) == [Event("message", "x")]


def test_encoders_round_trip() -> None:
    raw = encode_event("message_start", b'{"a":1}') + encode_data(b'{"b":2}')
    assert decode_all([raw]) == [Event("message_start", '{"a":1}'), Event("message", '{"b":2}')]
