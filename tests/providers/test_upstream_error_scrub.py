"""No provider passes on its target's credentials, whatever the upstream answers.

Each provider runs against its fake upstream over loopback HTTP, with credentials that are shaped
like nothing (only the target's credential set can find them): the api key, a configured header and
(where the provider's key is not itself an Authorization header) the userinfo of ``base_url``. The
upstream echoes all of them in an error status, in an HTML page and in an error event inside a 200
stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from llmrelay.clock import SystemClock
from llmrelay.config import KeySource, Secret, TargetConfig, TimeoutConfig
from llmrelay.context import Context
from llmrelay.errors import ConfigError, ConnectionFailed, RelayError, UpstreamError
from llmrelay.providers import Provider, create_provider
from llmrelay.providers.http import Upstream
from llmrelay.types import ChatRequest, text_message
from tests.fakes import openai_upstream
from tests.fakes.anthropic_upstream import AnthropicUpstream
from tests.fakes.gemini_upstream import GeminiUpstream
from tests.fakes.server import serve

API_KEY = "plain-configured-credential-7f3a"
HEADER_SECRET = "tenant-header-secret-99"
URL_PASSWORD = "pw-in-url-5678"
SECRETS = (API_KEY, HEADER_SECRET, URL_PASSWORD)
PROVIDERS = ["openai", "anthropic", "gemini"]


@dataclass
class Fake:
    """One provider's fake upstream behind one scripting interface."""

    name: str
    upstream: Any
    secrets: tuple[str, ...]

    @property
    def echo(self) -> str:
        return "upstream boom: " + ", ".join(f"credential {secret}" for secret in self.secrets)

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        headers = {"content-type": content_type}
        if self.name == "openai":
            self.upstream.script(openai_upstream.Reply(body, status=status, headers=headers))
        else:
            self.upstream.reply_raw(status, body, headers=headers)

    def error_event(self, message: str) -> None:
        if self.name == "openai":
            event = {"error": {"message": message, "type": "server_error", "code": None}}
            self.upstream.script(openai_upstream.StreamReply([event], done=False))
        elif self.name == "anthropic":
            self.upstream.reply_stream(
                [("error", {"type": "error", "error": {"type": "api_error", "message": message}})]
            )
        else:
            self.upstream.reply_stream([{"error": {"code": 500, "status": "INTERNAL", "message": message}}])


def error_json(name: str, message: str) -> bytes:
    if name == "openai":
        return msgspec.json.encode({"error": {"message": message, "type": "server_error", "param": message}})
    if name == "anthropic":
        return msgspec.json.encode({"type": "error", "error": {"type": "api_error", "message": message}})
    return msgspec.json.encode({"error": {"code": 500, "status": "INTERNAL", "message": message}})


@pytest.fixture(params=PROVIDERS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Fake, Provider]]:
    name: str = request.param
    upstream: Any = {
        "openai": openai_upstream.OpenAIUpstream,
        "anthropic": AnthropicUpstream,
        "gemini": GeminiUpstream,
    }[name]()
    async with serve(upstream.app()) as url:
        # OpenAI's key is an Authorization header, which userinfo (sent as Basic) cannot join.
        base = url if name == "openai" else url.replace("http://", f"http://relayuser:{URL_PASSWORD}@")
        target = TargetConfig(
            provider=name,
            model=f"{name}-model",
            api_key=KeySource(Secret(API_KEY)),
            base_url=base + ("/v1" if name == "openai" else ""),
            headers={"x-tenant-token": HEADER_SECRET},
        )
        provider = create_provider(
            target, TimeoutConfig(idle=5.0), SystemClock(), where="models[0].targets[0]"
        )
        await provider.open()
        try:
            secrets = SECRETS if "@" in base else (API_KEY, HEADER_SECRET)
            yield Fake(name, upstream, secrets), provider
        finally:
            await provider.aclose()


async def failure(provider: Provider, *, stream: bool) -> RelayError:
    request = ChatRequest(model="alias", messages=(text_message("user", "hi"),), stream=stream)
    with pytest.raises(RelayError) as info:
        await provider.chat(request, Context(clock=SystemClock(), request_id="req-1"))
    return info.value


def assert_clean(err: RelayError, secrets: tuple[str, ...] = SECRETS) -> None:
    shown = f"{err.message} {err} {err!r} {err.param}"
    for secret in secrets:
        assert secret not in shown


@pytest.mark.parametrize("stream", [False, True])
async def test_error_status_echoing_credentials(fake: tuple[Fake, Provider], stream: bool) -> None:
    upstream, provider = fake
    upstream.reply(500, error_json(upstream.name, upstream.echo), "application/json")
    err = await failure(provider, stream=stream)
    assert isinstance(err, UpstreamError)
    assert_clean(err, upstream.secrets)
    assert "upstream boom" in err.message


@pytest.mark.parametrize("stream", [False, True])
async def test_html_page_echoing_credentials(fake: tuple[Fake, Provider], stream: bool) -> None:
    upstream, provider = fake
    upstream.reply(502, f"<html><body><pre>{upstream.echo}</pre></body></html>".encode(), "text/html")
    err = await failure(provider, stream=stream)
    assert_clean(err, upstream.secrets)
    assert "upstream returned 502 (text/html," in err.message


async def test_error_event_in_a_200_stream_echoing_credentials(fake: tuple[Fake, Provider]) -> None:
    upstream, provider = fake
    upstream.error_event(upstream.echo)
    err = await failure(provider, stream=True)
    assert isinstance(err, UpstreamError)
    assert_clean(err, upstream.secrets)
    assert "upstream boom" in err.message


def test_upstream_host_never_includes_userinfo() -> None:
    assert Upstream("http://relayuser:pw@example.com:8443/v1", provider="openai").host == "example.com:8443"
    assert Upstream("https://api.example.com/v1", provider="openai").host == "api.example.com"
    assert Upstream("http://u:p@[::1]:9/v1", provider="openai").host == "[::1]:9"
    assert "pw" not in Upstream("relayuser:pw@nohost", provider="openai").host


async def test_userinfo_is_sent_as_basic_auth_and_scrubbed() -> None:
    fake = openai_upstream.OpenAIUpstream()
    async with serve(fake.app()) as url:
        base = url.replace("http://", f"http://relayuser:{URL_PASSWORD}@") + "/v1"
        target = TargetConfig(provider="openai", model="m", base_url=base)
        provider = create_provider(target, TimeoutConfig(idle=5.0), SystemClock(), where="t")
        await provider.open()
        try:
            fake.script(openai_upstream.Reply({"error": {"message": f"bad {URL_PASSWORD}"}}, status=500))
            err = await failure(provider, stream=False)
        finally:
            await provider.aclose()
    assert fake.last.headers["authorization"] == "Basic cmVsYXl1c2VyOnB3LWluLXVybC01Njc4"
    assert_clean(err)
    assert err.message == "openai: bad [redacted]"


def test_userinfo_and_an_authorization_header_is_a_config_error() -> None:
    target = TargetConfig(
        provider="openai",
        model="m",
        base_url=f"http://u:{URL_PASSWORD}@h/v1",
        api_key=KeySource(Secret(API_KEY)),
    )
    with pytest.raises(ConfigError) as info:
        create_provider(target, TimeoutConfig(), SystemClock(), where="t")
    assert URL_PASSWORD not in str(info.value) and API_KEY not in str(info.value)


async def test_connection_error_names_the_host_not_the_userinfo() -> None:
    async with serve(openai_upstream.OpenAIUpstream().app()) as url:
        dead = url.replace("http://", f"http://relayuser:{URL_PASSWORD}@") + "/v1"
    target = TargetConfig(provider="openai", model="m", base_url=dead)
    provider = create_provider(target, TimeoutConfig(idle=5.0), SystemClock(), where="t")
    await provider.open()
    try:
        err = await failure(provider, stream=False)
    finally:
        await provider.aclose()
    assert isinstance(err, ConnectionFailed)
    assert_clean(err)
    assert "relayuser" not in err.message
    assert url.removeprefix("http://") in err.message
