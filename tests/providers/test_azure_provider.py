"""The Azure OpenAI provider against the fake upstream's Azure routes over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from llmrelay.clock import SystemClock
from llmrelay.config import KeySource, Secret, TargetConfig, TimeoutConfig, load_config
from llmrelay.context import Context
from llmrelay.errors import ConfigError, RateLimited, UpstreamAuthError
from llmrelay.providers import create_provider
from llmrelay.providers.azure import DEFAULT_API_VERSION, AzureProvider, create
from llmrelay.relay import Relay
from llmrelay.streams import ChatStream
from llmrelay.types import ChatRequest, ChatResponse, EmbeddingRequest, text_message
from tests.fakes.openai_upstream import OpenAIUpstream, Reply, fake_vector
from tests.fakes.server import serve

KEY = "azure-key-0123456789abcdef0123"
CHAT = "/openai/deployments/gpt-4o-prod/chat/completions"


@pytest.fixture
def fake() -> OpenAIUpstream:
    return OpenAIUpstream()


@pytest.fixture
async def base_url(fake: OpenAIUpstream) -> AsyncIterator[str]:
    async with serve(fake.app()) as url:
        yield url


def make(base_url: str, **fields: Any) -> AzureProvider:
    target: dict[str, Any] = {"provider": "azure", "model": "gpt-4o-prod", "base_url": base_url}
    target.update(fields)
    target["api_key"] = KeySource(Secret(KEY))
    return create(TargetConfig(**target), TimeoutConfig(idle=5.0), SystemClock())


@pytest.fixture
async def provider(base_url: str) -> AsyncIterator[AzureProvider]:
    p = make(base_url)
    await p.open()
    try:
        yield p
    finally:
        await p.aclose()


def ctx() -> Context:
    return Context(clock=SystemClock(), request_id="req-az")


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(model="alias", messages=(text_message("user", "Hello there"),), **fields)


async def test_unary_goes_to_the_deployment_with_api_version_and_api_key(
    provider: AzureProvider, fake: OpenAIUpstream
) -> None:
    result = await provider.chat(chat(max_tokens=20), ctx())
    assert isinstance(result, ChatResponse)
    assert result.text == "You said: Hello there" and result.provider == "azure"
    assert result.model == "gpt-4o-prod"
    sent = fake.last
    assert sent.path == CHAT
    assert sent.query == {"api-version": DEFAULT_API_VERSION}
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers
    assert sent.json["model"] == "gpt-4o-prod"
    assert sent.json["max_completion_tokens"] == 20 and "max_tokens" not in sent.json
    assert sent.headers["x-client-request-id"] == "req-az"


async def test_streamed(provider: AzureProvider, fake: OpenAIUpstream) -> None:
    result = await provider.chat(chat(stream=True), ctx())
    assert isinstance(result, ChatStream)
    try:
        text = "".join([chunk.text async for chunk in result])
    finally:
        await result.aclose()
    assert text == "You said: Hello there"
    assert result.final().usage.output_tokens == 4 and result.model == "gpt-4o-prod"
    assert fake.last.path == CHAT and fake.last.query == {"api-version": DEFAULT_API_VERSION}
    assert fake.last.json["stream_options"] == {"include_usage": True}


async def test_embeddings(base_url: str, fake: OpenAIUpstream) -> None:
    p = make(base_url, model="embed-small", options={"api_version": "2024-06-01"})
    await p.open()
    try:
        result = await p.embed(EmbeddingRequest(model="alias", input=("a b", "c")), ctx())
    finally:
        await p.aclose()
    assert [list(v) for v in result.vectors] == [fake_vector("a b", 8), fake_vector("c", 8)]
    assert fake.last.path == "/openai/deployments/embed-small/embeddings"
    assert fake.last.query == {"api-version": "2024-06-01"} and fake.last.headers["api-key"] == KEY


async def test_error_replies_map_to_the_error_tree_without_the_key(
    provider: AzureProvider, fake: OpenAIUpstream
) -> None:
    fake.script(
        Reply(
            {"error": {"code": "429", "message": "Requests to the deployment have exceeded the rate limit."}},
            status=429,
            headers={"retry-after": "7"},
        ),
        Reply({"error": {"code": "401", "message": f"Access denied due to invalid key {KEY}."}}, status=401),
    )
    with pytest.raises(RateLimited) as limited:
        await provider.chat(chat(), ctx())
    assert limited.value.retry_after == 7 and limited.value.provider == "azure"
    with pytest.raises(UpstreamAuthError) as denied:
        await provider.chat(chat(), ctx())
    assert KEY not in str(denied.value)


async def test_a_wildcard_alias_picks_the_deployment_from_the_name(
    base_url: str, fake: OpenAIUpstream
) -> None:
    target = {"provider": "azure", "base_url": base_url, "api_key": KEY}
    async with Relay.from_config({"models": [{"name": "azure/*", "targets": [target]}]}) as relay:
        answer = await relay.chat("azure/gpt-4o-eu", [{"role": "user", "content": "hi"}])
    assert answer.text == "You said: hi"
    assert fake.last.path == "/openai/deployments/gpt-4o-eu/chat/completions"


def test_options_are_validated_with_the_path_named() -> None:
    target = TargetConfig(
        provider="azure", model="d", base_url="https://r.openai.azure.com", options={"api_version": "v1"}
    )
    with pytest.raises(ConfigError, match=r"azure at `\$.models\[0\].targets\[0\].options`"):
        create_provider(target, TimeoutConfig(), SystemClock(), where="$.models[0].targets[0]")


def test_config_knows_azure() -> None:
    target = {"provider": "azure", "model": "d", "base_url": "https://r.openai.azure.com"}
    assert (
        load_config({"models": [{"name": "a", "targets": [target]}]}).models[0].targets[0].provider == "azure"
    )
    with pytest.raises(msgspec.ValidationError):
        create(TargetConfig(provider="azure", model="d"), TimeoutConfig(), SystemClock())


async def test_an_older_api_version_can_ask_for_max_tokens(base_url: str, fake: OpenAIUpstream) -> None:
    options = {"api_version": "2024-06-01", "max_tokens_param": "max_tokens", "stream_usage": False}
    p = make(base_url, options=options)
    await p.open()
    try:
        await p.chat(chat(max_tokens=9), ctx())
    finally:
        await p.aclose()
    assert fake.last.json["max_tokens"] == 9 and "max_completion_tokens" not in fake.last.json
    assert fake.last.query == {"api-version": "2024-06-01"}
