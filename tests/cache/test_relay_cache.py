"""The same cache in process: ``Relay`` with a memory-backed cache, no server."""

from __future__ import annotations

from llmrelay import Relay
from llmrelay.context import CallStats
from llmrelay.types import ChatRequest, text_message

CONFIG = {
    "models": [
        {
            "name": "cached",
            "targets": [{"provider": "mock", "options": {"text": "hi"}}],
            "cache": {"ttl": 60},
        },
        {"name": "plain", "targets": [{"provider": "mock", "options": {"text": "hi"}}]},
    ]
}


async def test_relay_serves_a_repeat_from_its_memory_cache() -> None:
    async with Relay.from_config(CONFIG) as relay:
        first = await relay.chat("cached", [{"role": "user", "content": "Hello"}])
        second = await relay.chat("cached", [{"role": "user", "content": "Hello"}])
        assert not first.replayed and second.replayed and second.text == first.text
        assert not (await relay.chat("plain", [{"role": "user", "content": "Hello"}])).replayed
        assert not (await relay.chat("plain", [{"role": "user", "content": "Hello"}])).replayed


async def test_relay_honours_cache_control_in_its_context() -> None:
    request = ChatRequest(model="cached", messages=(text_message("user", "Bypass me"),))
    async with Relay.from_config(CONFIG) as relay:
        await relay.send(request)
        stats = CallStats()
        result = await relay.send(request, relay.context(cache_control="no-store", stats=stats))
        assert not result.replayed and stats.cache == "bypass"
