"""Token estimates: the calibrated estimate against the real tokenizer, and what a request adds up to."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrelay.pricing.tokens import (
    DEFAULT_OUTPUT_TOKENS,
    TOKENS_PER_IMAGE,
    TOKENS_PER_LOW_IMAGE,
    TOKENS_PER_MESSAGE,
    count_tokens,
    estimate_input_tokens,
    estimate_tokens,
    output_bound,
    output_estimate,
)
from llmrelay.types import ChatRequest, EmbeddingRequest, ImagePart, Message, Tool, text_message

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"


def test_count_tokens_is_the_o200k_count() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2  # "hello", " world" in o200k_base


def test_the_estimate_is_close_to_the_tokenizer_on_real_prose() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    exact = count_tokens(text)
    assert abs(estimate_tokens(text) - exact) / exact < 0.15


@pytest.mark.parametrize(("text", "low", "high"), [("", 0, 0), ("hi", 1, 2), ("日本語のテキスト", 8, 8)])
def test_estimate_tokens_small_cases(text: str, low: int, high: int) -> None:
    assert low <= estimate_tokens(text) <= high


def test_a_request_counts_messages_tools_and_images() -> None:
    bare = ChatRequest(model="m", messages=(text_message("user", "What is the weather in Paris today?"),))
    base = estimate_input_tokens(bare)
    assert base == TOKENS_PER_MESSAGE * 2 + estimate_tokens("What is the weather in Paris today?")
    image = Message(role="user", content=(ImagePart(url="https://x/y.png"),))
    low = Message(role="user", content=(ImagePart(url="https://x/y.png", detail="low"),))
    with_images = ChatRequest(model="m", messages=(*bare.messages, image, low))
    assert estimate_input_tokens(with_images) == base + 2 * TOKENS_PER_MESSAGE + TOKENS_PER_IMAGE + (
        TOKENS_PER_LOW_IMAGE
    )
    tool = Tool(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
    with_tools = ChatRequest(model="m", messages=bare.messages, tools=(tool,))
    assert estimate_input_tokens(with_tools) > base + 5


def test_an_embedding_request_counts_its_inputs_and_produces_nothing() -> None:
    request = EmbeddingRequest(model="e", input=("one two", "three"))
    assert estimate_input_tokens(request) == estimate_tokens("one two") + estimate_tokens("three")
    assert output_bound(request) == 0


@pytest.mark.parametrize(
    ("max_tokens", "cap", "expected"),
    [
        (None, None, DEFAULT_OUTPUT_TOKENS),
        (100, None, 100),
        (100_000, None, DEFAULT_OUTPUT_TOKENS),
        (None, 50, 50),
        (200, 50, 50),
        (20, 50, 20),
    ],
)
def test_output_estimate_is_bounded_by_max_tokens_and_the_cap(
    max_tokens: int | None, cap: int | None, expected: int
) -> None:
    assert output_estimate(max_tokens, cap) == expected
