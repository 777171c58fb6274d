"""Which request parameters a target cannot honour, and what happens to them (400 or dropped)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from llmrelay import InvalidRequest
from llmrelay.types import ChatRequest, EmbeddingRequest, Extensions, text_message
from llmrelay.wire.foreign_params import foreign_params, honour_or_drop

HI = (text_message("user", "hi"),)


def chat(extensions: Extensions) -> ChatRequest:
    return ChatRequest(model="alias", messages=HI, extensions=extensions)


OPENAI_KNOBS: Extensions = {
    "openai": {"logprobs": True, "top_logprobs": 2, "stream_options": {"include_usage": True}}
}
ANTHROPIC_KNOBS: Extensions = {
    "anthropic": {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}}
}
GEMINI_KNOBS: Extensions = {"gemini": {"safetySettings": []}}


@pytest.mark.parametrize(
    ("extensions", "provider", "expected"),
    [
        # Each provider honours its own namespace.
        (OPENAI_KNOBS, "openai", []),
        (ANTHROPIC_KNOBS, "anthropic", []),
        (GEMINI_KNOBS, "gemini", []),
        # Another provider's knobs are foreign; the server's own transport fields never are.
        (OPENAI_KNOBS, "anthropic", ["logprobs", "top_logprobs"]),
        (OPENAI_KNOBS, "gemini", ["logprobs", "top_logprobs"]),
        (ANTHROPIC_KNOBS, "openai", ["top_k", "thinking"]),
        (ANTHROPIC_KNOBS, "gemini", ["top_k", "thinking"]),
        (GEMINI_KNOBS, "openai", ["safetySettings"]),
        ({**OPENAI_KNOBS, **GEMINI_KNOBS}, "anthropic", ["logprobs", "top_logprobs", "safetySettings"]),
        # Values that ask for the default behaviour are honoured by every target.
        (
            {
                "openai": {
                    "n": 1,
                    "logprobs": False,
                    "presence_penalty": 0,
                    "frequency_penalty": 0.0,
                    "logit_bias": {},
                    "store": False,
                    "metadata": None,
                }
            },
            "anthropic",
            [],
        ),
        ({"anthropic": {"thinking": {"type": "disabled"}}}, "openai", []),
        ({"openai": {"presence_penalty": 0.5}}, "gemini", ["presence_penalty"]),
        # The mock stands in for every provider; unknown namespaces are nobody's knobs.
        ({**OPENAI_KNOBS, **ANTHROPIC_KNOBS}, "mock", []),
        ({"tracing": {"span": "x"}}, "anthropic", []),
    ],
)
def test_foreign_params(extensions: Extensions, provider: str, expected: list[str]) -> None:
    assert foreign_params(chat(extensions), provider) == expected


def test_embeddings_encoding_format_is_the_servers_own() -> None:
    request = EmbeddingRequest(model="e", input=("a",), extensions={"openai": {"encoding_format": "base64"}})
    assert foreign_params(request, "gemini") == []
    request = EmbeddingRequest(
        model="e", input=("a",), extensions={"openai": {"encoding_format": "x", "nope": 1}}
    )
    assert foreign_params(request, "gemini") == ["nope"]


def test_foreign_params_are_a_400_naming_them_and_the_way_out() -> None:
    with pytest.raises(InvalidRequest) as bad:
        honour_or_drop(
            chat(OPENAI_KNOBS), "anthropic", drop_params=False, alias="claude", target="anthropic/x"
        )
    assert bad.value.param == "logprobs"
    assert bad.value.status == 400
    for words in ("`logprobs`", "`top_logprobs`", "anthropic/x", "drop_params: true", "'claude'"):
        assert words in bad.value.message


def test_drop_params_drops_only_the_foreign_ones_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    extensions: Extensions = {**OPENAI_KNOBS, **ANTHROPIC_KNOBS, "tracing": {"span": "x"}}
    request = chat(extensions)
    with caplog.at_level(logging.DEBUG, logger="llmrelay.params"):
        kept = honour_or_drop(request, "anthropic", drop_params=True, alias="claude", target="anthropic/x")
    assert isinstance(kept, ChatRequest)
    assert kept.extensions == {
        "openai": {"stream_options": {"include_usage": True}},
        "anthropic": ANTHROPIC_KNOBS["anthropic"],
        "tracing": {"span": "x"},
    }
    assert request.extensions == extensions  # the original is untouched: another attempt may reuse it
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert "logprobs" in record.getMessage() and "anthropic/x" in record.getMessage()


def test_a_request_with_nothing_foreign_is_passed_as_is() -> None:
    request: Any = chat(ANTHROPIC_KNOBS)
    assert honour_or_drop(request, "anthropic", drop_params=False, alias="a", target="t") is request
