"""Gemini call signatures riding on tool-call ids: on and off again, nothing else touched."""

from __future__ import annotations

from llmrelay.wire.call_ids import split, with_signature


def test_signature_rides_on_the_id_and_comes_off_unchanged() -> None:
    meta = {"gemini": {"thoughtSignature": "CvgBAVSo+/9w=="}}
    carried = with_signature("call_1", meta)
    assert carried == "call_1__thought__CvgBAVSo+/9w=="
    assert split(carried) == ("call_1", meta)


def test_ids_without_a_signature_are_left_alone() -> None:
    assert with_signature("toolu_1", None) == "toolu_1"
    assert with_signature("toolu_1", {"anthropic": {"cache_control": {"type": "ephemeral"}}}) == "toolu_1"
    assert split("toolu_1") == ("toolu_1", None)
