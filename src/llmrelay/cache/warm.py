"""Warming the cache: one line of ``llmrelay cache warm FILE.jsonl`` (``POST /admin/cache/warm``).

A line names the alias (``model``) and the question, as ``messages`` (OpenAI-style, the whole
conversation) or ``question`` (one user message), and optionally the ``answer`` to keep. With an
answer, it is stored as the model's reply to that conversation; without one, the model is called
through the whole pipeline (limits, budget, routing) with ``Cache-Control: no-cache`` and the cache
keeps its reply as it keeps any miss. ``key_id`` and ``team`` say whose entry it is, for aliases
whose ``scope`` is ``key`` or ``team``; a ``shared`` alias needs neither.

The request is built as a plain chat completion of that conversation (no tools, no parameters),
so it warms the entries such a request reads: through the server, ``{"model": ..., "messages":
[...]}``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import msgspec

from llmrelay.errors import InvalidRequest, NotFound, RelayError
from llmrelay.relay import Relay
from llmrelay.types import ChatRequest, ChatResponse, Message, text_message
from llmrelay.wire.openai_inbound import decode_messages


class WarmItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    model: str
    messages: list[dict[str, Any]] | None = None
    question: str | None = None
    answer: str | None = None
    key_id: str | None = None
    team: str | None = None


async def warm(relay: Relay, item: WarmItem) -> Literal["stored", "called"]:
    """Keep one item's answer: ``stored`` (it was given) or ``called`` (the model gave it)."""
    cache = relay.cache
    if cache is None:
        raise NotFound("no model alias has a cache configured", param="model")
    cache.alias(item.model)  # its alias caches, or NotFound before anything is called
    request = _request(item)
    ctx = relay.context(
        principal=item.key_id, tags={"team": item.team} if item.team else {}, cache_control="no-cache"
    )
    if item.answer is None:
        result = await relay.send(request, ctx)
        assert isinstance(result, ChatResponse)
        return "called"
    answer = ChatResponse(
        id="warm-" + os.urandom(8).hex(),
        model=item.model,
        created=int(relay.clock.wall()),
        message=text_message("assistant", item.answer),
    )
    if not await cache.store(request, ctx, answer):
        raise RelayError(
            "the cache store is unavailable; the entry was not kept", status=503, code="cache_unavailable"
        )
    return "stored"


def _request(item: WarmItem) -> ChatRequest:
    if (item.messages is None) == (item.question is None):
        raise InvalidRequest("give either `messages` or `question`", param="messages")
    messages: tuple[Message, ...]
    if item.question is not None:
        messages = (text_message("user", item.question),)
    else:
        messages = decode_messages(item.messages)
    if not messages or messages[-1].role != "user":
        raise InvalidRequest("the conversation must end with a user message", param="messages")
    return ChatRequest(model=item.model, messages=messages)
