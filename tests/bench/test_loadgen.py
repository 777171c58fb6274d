"""bench/loadgen.py: first-text detection in SSE bytes and per-request headers (pure parts)."""

from __future__ import annotations

import pytest
from bench.loadgen import RequestHeaders, Result, carries_text

ROLE = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
TEXT = b'data: {"choices":[{"index":0,"delta":{"content":"tok0 "}}]}\n\n'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (ROLE, False),
        (ROLE + TEXT, True),
        (TEXT.replace(b'":"', b'": "'), True),  # spaced JSON, as json.dumps writes it
        (b'data: {"delta":{"content":null}}\n\n', False),
        (b'event: content_block_delta\ndata: {"delta":{"type":"text_delta","text":"Hi"}}\n\n', True),
        (b'data: {"delta":{"type":"text_delta","text":""}}\n\n', False),
    ],
)
def test_first_text_is_an_event_with_a_non_empty_string(data: bytes, expected: bool) -> None:
    assert carries_text(data) is expected


def test_numbered_headers_differ_per_request_and_static_ones_do_not() -> None:
    numbered = RequestHeaders({"Idempotency-Key": "bench-{n}"})
    first, second = numbered(), numbered()
    assert first["Idempotency-Key"] != second["Idempotency-Key"]
    assert first["content-type"] == "application/json"
    static = RequestHeaders()
    assert static() == static() == {"content-type": "application/json"}


def test_stream_summary_has_ttfb_and_ttft_plain_summary_does_not() -> None:
    stream = Result(latencies=[0.1, 0.2], ttfb=[0.001, 0.002], ttft=[0.006, 0.007], elapsed=1.0)
    summary = stream.summary()
    assert summary["ttft_p50_ms"] == pytest.approx(7.0)
    assert summary["ttfb_p50_ms"] == pytest.approx(2.0)
    assert summary["rate"] == 2.0
    assert "ttft_p50_ms" not in Result(latencies=[0.1], elapsed=1.0).summary()
