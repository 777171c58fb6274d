"""Token estimates before a call: what a request will likely consume, without asking the provider.

Two ways to count, both offline:

* :func:`count_tokens`: exact for the OpenAI family, with the ``o200k_base`` tokenizer of
  ``bpe-openai`` (its tables ship inside the wheel; ``tiktoken`` downloads them at run time, which a
  gateway without egress cannot do). Loading the tables takes about a second, once per process, so
  nothing on the request path calls it; it is for callers that need the exact figure.
* :func:`estimate_tokens`: a calibrated linear estimate from ASCII words and punctuation, for every
  provider (Anthropic and Gemini publish no offline tokenizer) and for the request path. Fitted
  against ``o200k_base`` on this repository's docs and Python's docstrings; ``bench/token_estimate.py``
  measures its error on text it was not fitted on. A non-ASCII character counts as one token
  (CJK text runs close to that; the estimate errs high rather than low there).

:func:`estimate_input_tokens` applies the estimate to a whole request (message text, tool calls and
results, tool schemas, a fixed charge per image and per message), and :func:`output_estimate` bounds
the answer by ``max_tokens`` or the model's output cap. Actual usage always comes from the response
(or the stream's final usage); these figures only rank targets and, later, reserve budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING

import msgspec

from llmrelay.types import ChatRequest, EmbeddingRequest, ImagePart, TextPart, ToolCallPart, ToolResultPart

if TYPE_CHECKING:
    from bpe_openai import Encoding

TOKENS_PER_WORD = 1.24
"""Tokens per ASCII word (``[A-Za-z0-9_]+``), least-squares fit against ``o200k_base``."""
TOKENS_PER_PUNCTUATION = 0.61
"""Tokens per ASCII punctuation character, from the same fit."""
TOKENS_PER_MESSAGE = 4
"""Role markers and separators around each message (OpenAI's chat format spends 3-4)."""
TOKENS_PER_IMAGE = 765
"""An image at ``high``/``auto`` detail: OpenAI's figure for a 1024x1024 image (Anthropic ~1,600 at
its largest, Gemini 258): a middle value, since only the order of magnitude matters for routing."""
TOKENS_PER_LOW_IMAGE = 85
DEFAULT_OUTPUT_TOKENS = 1024
"""Assumed answer length when neither ``max_tokens`` nor the model's cap says less."""

_WORDS = re.compile(r"[A-Za-z0-9_]+")
_PUNCTUATION = re.compile(r"[!-/:-@\[-^`{-~]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def estimate_tokens(text: str) -> int:
    """Calibrated estimate of ``text``'s token count (any provider; no tokenizer loaded)."""
    if not text:
        return 0
    words = len(_WORDS.findall(text))
    marks = len(_PUNCTUATION.findall(text))
    wide = len(_NON_ASCII.findall(text)) if not text.isascii() else 0
    return round(TOKENS_PER_WORD * words + TOKENS_PER_PUNCTUATION * marks) + wide


def count_tokens(text: str) -> int:
    """Exact ``o200k_base`` token count (GPT-4o and later). Loads the tables on first use (~1 s)."""
    return len(_o200k().encode_ordinary(text))


@cache
def _o200k() -> Encoding:
    import bpe_openai  # deferred: ~1 s to load its tables, and only callers of count_tokens pay it

    return bpe_openai.get_encoding("o200k_base")


def estimate_input_tokens(request: ChatRequest | EmbeddingRequest) -> int:
    """The prompt's estimated size: text, tool traffic, tool schemas, images, per-message overhead."""
    if isinstance(request, EmbeddingRequest):
        return sum(estimate_tokens(text) for text in request.input)
    total = TOKENS_PER_MESSAGE * (len(request.messages) + 1)  # +1: the reply's priming
    for text in _texts(request):
        total += estimate_tokens(text)
    for message in request.messages:
        for part in message.content:
            if isinstance(part, ImagePart):
                total += TOKENS_PER_LOW_IMAGE if part.detail == "low" else TOKENS_PER_IMAGE
    return total


def _texts(request: ChatRequest) -> Iterator[str]:
    for message in request.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                yield part.text
            elif isinstance(part, ToolCallPart):
                yield part.name
                yield part.arguments
            elif isinstance(part, ToolResultPart):
                yield part.content
    if request.tools:
        # Providers render tool definitions into the prompt; their JSON is a fair proxy.
        yield msgspec.json.encode(request.tools).decode()
    if request.response_format is not None and request.response_format.json_schema is not None:
        yield msgspec.json.encode(request.response_format.json_schema).decode()


def output_estimate(max_tokens: int | None, cap: int | None = None) -> int:
    """The answer's expected size: :data:`DEFAULT_OUTPUT_TOKENS`, bounded by ``max_tokens`` and by
    the model's output ``cap`` (whichever are known)."""
    bounds = [n for n in (max_tokens, cap) if n is not None]
    return min(DEFAULT_OUTPUT_TOKENS, *bounds) if bounds else DEFAULT_OUTPUT_TOKENS


def output_bound(request: ChatRequest | EmbeddingRequest, cap: int | None = None) -> int:
    """:func:`output_estimate` for a request (an embedding produces no output tokens)."""
    if isinstance(request, EmbeddingRequest):
        return 0
    return output_estimate(request.max_tokens, cap)
