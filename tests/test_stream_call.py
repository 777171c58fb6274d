"""``Relay.stream``'s ``StreamCall``: closing it closes the upstream, read or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from llmrelay import Relay
from llmrelay.context import Context
from llmrelay.providers.mock import MockProvider
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest


async def test_closing_a_stream_call_closes_the_upstream_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = asyncio.Event()

    async def chunks() -> AsyncGenerator[ChatChunk, None]:
        try:
            yield ChatChunk(text="a")
            yield ChatChunk(text="b")
        finally:
            closed.set()

    async def chat(self: MockProvider, request: ChatRequest, ctx: Context) -> ChatStream:
        return await ChatStream.open_chunks(chunks(), id="s", model="m", created=0)

    monkeypatch.setattr(MockProvider, "chat", chat)
    async with Relay.from_config({"models": [{"name": "m", "targets": [{"provider": "mock"}]}]}) as relay:
        call = relay.stream("m", [{"role": "user", "content": "hi"}])
        await call.start()
        await call.aclose()
        assert closed.is_set()
