"""Upstream errors reach clients scrubbed and summarised, through the real ``llmrelay serve``.

The ``leaky`` alias is served by the fake OpenAI upstream, whose errors echo the gateway's provider
key (shaped like nothing, so only the target's credential set can catch it) and a configured
header; it is asked through both faces, ``/v1/chat/completions`` and ``/v1/messages``, unary and
streamed. The gateway's own log must not hold the secrets either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.conftest import APP_KEY, Upstreams, gateway_config
from tests.e2e.gateway import Gateway, run_gateway
from tests.fakes.openai_upstream import Reply, StreamReply

pytestmark = pytest.mark.asyncio(loop_scope="module")

LEAKY_KEY = "e2e-plain-provider-credential-31"
TENANT = "e2e-tenant-header-secret-77"
SECRETS = (LEAKY_KEY, TENANT)
ECHO = f"upstream boom, your key was Bearer {LEAKY_KEY} (tenant {TENANT})"
FACES = {
    "/v1/chat/completions": {"authorization": f"Bearer {APP_KEY}"},
    "/v1/messages": {"x-api-key": APP_KEY, "anthropic-version": "2023-06-01"},
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    config = gateway_config(upstreams.urls)
    leaky = {
        "provider": "openai",
        "model": "gpt-leaky",
        "api_key": LEAKY_KEY,
        "headers": {"x-tenant-token": TENANT},
        "base_url": upstreams.urls["openai"] + "/v1",
    }
    # Shadow breaker: every test here makes the target fail, and an open circuit would hide the next one.
    config["models"].append(
        {
            "name": "leaky",
            "targets": [leaky],
            "retry": {"max_retries": 0},
            "circuit_breaker": {"enforce": False},
        }
    )
    async with run_gateway(config, tmp_path_factory.mktemp("gw-upstream-errors")) as gw:
        yield gw


async def ask(gateway: Gateway, path: str, *, stream: bool) -> tuple[int, str]:
    body: dict[str, Any] = {
        "model": "leaky",
        "max_tokens": 16,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {**FACES[path], "content-type": "application/json"}
    async with aiohttp.ClientSession() as s, s.post(gateway.url + path, json=body, headers=headers) as r:
        return r.status, (await r.read()).decode()


def message_of(path: str, text: str) -> str:
    """The error message in the face's shape (a JSON body, or the error event of an SSE stream)."""
    if not text.startswith("{"):
        text = next(line[6:] for line in text.splitlines() if line.startswith('data: {"') and "error" in line)
    payload = json.loads(text)
    if path == "/v1/messages":
        assert payload["type"] == "error"
    return str(payload["error"]["message"])


def assert_clean(gateway: Gateway, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
        assert secret not in gateway.log()


@pytest.mark.parametrize("path", list(FACES))
@pytest.mark.parametrize("stream", [False, True])
async def test_json_error_echoing_the_provider_key(
    gateway: Gateway, upstreams: Upstreams, path: str, stream: bool
) -> None:
    upstreams.openai.script(Reply({"error": {"message": ECHO, "type": "server_error"}}, status=500))
    status, text = await ask(gateway, path, stream=stream)
    assert status >= 500
    assert_clean(gateway, text)
    assert "upstream boom, your key was Bearer [redacted]" in message_of(path, text)


@pytest.mark.parametrize("path", list(FACES))
@pytest.mark.parametrize("stream", [False, True])
async def test_html_502_is_summarised(
    gateway: Gateway, upstreams: Upstreams, path: str, stream: bool
) -> None:
    page = f"<html><body><h1>502 Bad Gateway</h1><!-- {ECHO} -->".encode().ljust(1229) + b"</body></html>"
    upstreams.openai.script(Reply(page, status=502, headers={"content-type": "text/html"}))
    status, text = await ask(gateway, path, stream=stream)
    assert status == 502
    assert_clean(gateway, text)
    assert "Bad Gateway" not in text
    assert "upstream returned 502 (text/html, 1.2 KB)" in message_of(path, text)


CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-leaky",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Partial"}, "finish_reason": None}],
}


@pytest.mark.parametrize("path", list(FACES))
@pytest.mark.parametrize("committed", [False, True], ids=["before-first-chunk", "mid-stream"])
async def test_error_event_inside_a_200_stream(
    gateway: Gateway, upstreams: Upstreams, path: str, committed: bool
) -> None:
    event = {"error": {"message": ECHO, "type": "server_error", "code": None}}
    upstreams.openai.script(StreamReply([CHUNK, event] if committed else [event], done=False))
    status, text = await ask(gateway, path, stream=True)
    assert status == (200 if committed else 500)
    assert ("Partial" in text) is committed
    assert_clean(gateway, text)
    assert "upstream boom" in message_of(path, text)


@pytest.mark.parametrize("path", list(FACES))
async def test_upstream_rejecting_the_provider_key_is_a_502(
    gateway: Gateway, upstreams: Upstreams, path: str
) -> None:
    error = {
        "error": {"message": f"Incorrect API key provided: {LEAKY_KEY}", "type": "invalid_request_error"}
    }
    upstreams.openai.script(Reply(error, status=401))
    status, text = await ask(gateway, path, stream=False)
    assert status == 502
    assert_clean(gateway, text)
    assert "rejected" in message_of(path, text)
    if path == "/v1/chat/completions":
        assert json.loads(text)["error"]["code"] == "upstream_auth_error"
