"""Token counting through ``llmrelay serve``: the provider's own endpoint where it has one, else an
estimate; Anthropic's ``count_tokens`` shape (with the official SDK) and ``/v1/tokens/count``."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import pytest

from llmrelay.pricing.tokens import estimate_input_tokens
from llmrelay.wire.openai_inbound import decode_chat_request
from tests.e2e.conftest import APP_KEY, LIMITED_KEY, Upstreams
from tests.e2e.gateway import Gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

MESSAGES: Any = [{"role": "user", "content": "How many tokens is this sentence, roughly?"}]
TOOL: Any = {"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}


def client(gateway: Gateway, key: str = APP_KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=20)


async def post(gateway: Gateway, path: str, body: dict[str, Any], key: str = APP_KEY) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers={"authorization": f"Bearer {key}"}) as http,
        http.post(gateway.url + path, json=body) as reply,
    ):
        return reply.status, await reply.json()


async def test_anthropic_alias_asks_anthropic(gateway: Gateway, upstreams: Upstreams) -> None:
    counted = await client(gateway).messages.count_tokens(
        model="claude", messages=MESSAGES, system="Be brief", tools=[TOOL]
    )
    sent = upstreams.anthropic.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json["model"] == "anthropic-model" and "max_tokens" not in sent.json
    assert sent.json["system"] == "Be brief" and sent.json["tools"][0]["name"] == "lookup"
    # The fake's own count of what it was sent (messages, system and tools).
    words = len(json.dumps(sent.json["messages"]).split()) + 2 + len(json.dumps(sent.json["tools"]).split())
    assert counted.input_tokens == words


async def test_gemini_alias_asks_gemini(gateway: Gateway, upstreams: Upstreams) -> None:
    counted = await client(gateway).messages.count_tokens(model="gem", messages=MESSAGES, system="Be brief")
    sent = upstreams.gemini.requests[-1]
    assert sent.path.endswith("/models/gemini-model:countTokens")
    generate = sent.json["generateContentRequest"]
    assert (
        generate["model"] == "models/gemini-model"
        and generate["systemInstruction"]["parts"][0]["text"] == "Be brief"
    )
    assert counted.input_tokens == 7 + 2 + 1  # words of the message, of the system text, one per content

    status, body = await post(gateway, "/v1/tokens/count", {"model": "gem", "messages": MESSAGES})
    assert status == 200 and body["source"] == "provider" and body["model"] == "gem"


async def test_openai_alias_is_estimated_without_an_upstream_call(
    gateway: Gateway, upstreams: Upstreams
) -> None:
    status, body = await post(gateway, "/v1/tokens/count", {"model": "gpt", "messages": MESSAGES})
    expected = estimate_input_tokens(
        decode_chat_request(json.dumps({"model": "gpt", "messages": MESSAGES}).encode())
    )
    assert (status, body) == (200, {"model": "gpt", "input_tokens": expected, "source": "estimate"})
    assert upstreams.openai.requests == []
    status, by_input = await post(
        gateway, "/v1/tokens/count", {"model": "gpt", "input": MESSAGES[0]["content"]}
    )
    assert status == 200 and by_input["input_tokens"] == expected  # the same prompt, as a Responses input
    counted = await client(gateway).messages.count_tokens(model="mock", messages=MESSAGES)
    assert counted.input_tokens == expected


async def test_a_provider_that_is_down_gives_an_estimate(gateway: Gateway, upstreams: Upstreams) -> None:
    upstreams.anthropic.reply_error(529, "overloaded_error", "Overloaded")
    status, body = await post(gateway, "/v1/tokens/count", {"model": "claude", "messages": MESSAGES})
    assert status == 200 and body["source"] == "estimate" and body["input_tokens"] > 0
    upstreams.anthropic.reply_error(400, "invalid_request_error", "messages: bad block")
    status, body = await post(gateway, "/v1/tokens/count", {"model": "claude", "messages": MESSAGES})
    assert status == 400 and "bad block" in body["error"]["message"]


async def test_access_and_errors_in_the_callers_shape(gateway: Gateway) -> None:
    with pytest.raises(anthropic.PermissionDeniedError):
        await client(gateway, LIMITED_KEY).messages.count_tokens(model="claude", messages=MESSAGES)
    with pytest.raises(anthropic.NotFoundError):
        await client(gateway).messages.count_tokens(model="nope", messages=MESSAGES)
    with pytest.raises(anthropic.AuthenticationError):
        await client(gateway, "sk-wrong").messages.count_tokens(model="claude", messages=MESSAGES)
    status, body = await post(gateway, "/v1/messages/count_tokens", {"model": "claude", "messages": "x"})
    assert status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"

    status, body = await post(gateway, "/v1/tokens/count", {"model": "gpt"})
    assert status == 400 and body["error"]["param"] == "messages"
    status, body = await post(
        gateway, "/v1/tokens/count", {"model": "gpt", "messages": MESSAGES, "input": "x"}
    )
    assert status == 400
    status, body = await post(
        gateway, "/v1/tokens/count", {"model": "gpt", "messages": MESSAGES}, key=LIMITED_KEY
    )
    assert status == 403 and "Models this key may use: mock" in body["error"]["message"]
    status, body = await post(gateway, "/v1/tokens/count", {"model": "nope", "messages": MESSAGES})
    assert status == 404 and body["error"]["code"] == "model_not_found"
