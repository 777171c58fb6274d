"""Placeholders restored (and outputs masked) however the stream's chunks split them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.pii.detectors import DetectorSet
from llmrelay.pii.redactor import Redactor, Vault
from llmrelay.pii.stream_text import PiiRewriter
from llmrelay.streams import Batch, ChatStream
from llmrelay.types import ChatChunk, ToolCallDelta

REDACTOR = Redactor(DetectorSet())
PROMPT = "write to jane.roe@example.org and call +1 415 555 2671"


def vault() -> Vault:
    v = Vault(REDACTOR)
    assert v.redact(PROMPT) == "write to <EMAIL_1> and call <PHONE_1>"
    return v


def split(text: str, cuts: Sequence[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True) if b > a]


ANSWER = "Done: mailed <EMAIL_1>, called <PHONE_1>; <EMAIL_9> and a < b> stay. New: bob@example.net"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=30))
def test_restored_across_any_split(cuts: list[int]) -> None:
    rewriter = PiiRewriter(vault(), None)
    pieces = [c.text for c in rewriter.rewrite([ChatChunk(text=p) for p in split(ANSWER, cuts)])]
    pieces += [c.text for c in rewriter.rewrite([ChatChunk(finish_reason="stop")])]
    expected = ANSWER.replace("<EMAIL_1>", "jane.roe@example.org").replace("<PHONE_1>", "+1 415 555 2671")
    assert "".join(pieces) == expected
    assert not rewriter.flush()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=30))
def test_outputs_masked_across_any_split_and_flushed_at_the_end(cuts: list[int]) -> None:
    rewriter = PiiRewriter(vault(), REDACTOR)
    pieces = [c.text for c in rewriter.rewrite([ChatChunk(text=p) for p in split(ANSWER, cuts)])]
    pieces += [c.text for c in rewriter.flush()]  # the source ended without a finish chunk
    joined = "".join(pieces)
    assert joined.endswith("New: [EMAIL]") and "bob@" not in joined
    assert "mailed jane.roe@example.org, called +1 415 555 2671;" in joined


async def batches(chunks: list[ChatChunk]) -> AsyncIterator[Batch]:
    for chunk in chunks:
        yield (chunk,)


async def test_through_a_stream_tool_arguments_too_and_final_matches() -> None:
    chunks = [
        ChatChunk(text="Sent to <EMA"),
        ChatChunk(text="IL_1>"),
        ChatChunk(tool_calls=(ToolCallDelta(index=0, id="c", name="send", arguments='{"to": "<EMAIL'),)),
        ChatChunk(tool_calls=(ToolCallDelta(index=0, arguments='_1>"}'),)),
        ChatChunk(finish_reason="tool_calls"),
    ]
    stream = await ChatStream.open(batches(chunks), id="s", model="m", created=0)
    stream.rewrite(PiiRewriter(vault(), None))
    seen = [chunk async for chunk in stream]
    final = stream.final()
    assert "".join(c.text for c in seen) == "Sent to jane.roe@example.org" == final.text
    assert final.tool_calls[0].arguments == '{"to": "jane.roe@example.org"}'


async def test_closing_while_held_text_is_pending_ends_the_stream_without_running_its_end() -> None:
    chunks = [ChatChunk(text="To <EMA")]  # the source ends holding text: it comes as the tail
    stream = await ChatStream.open(batches(chunks), id="s", model="m", created=0)
    stream.rewrite(PiiRewriter(vault(), None))
    assert [c.text for c in await stream.next_batch()] == ["To "]  # "<EMA" may start a placeholder
    assert [c.text for c in await stream.next_batch()] == ["<EMA"]  # the tail, once the source ended
    await stream.aclose()
    assert await stream.next_batch() == () and not stream.done
