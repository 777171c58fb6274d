"""One real gateway subprocess per test module, in front of fake upstreams over loopback HTTP.

The fakes run on the module's event loop; the gateway is ``llmrelay serve`` as a separate process
(what users run), so these tests cross real sockets, real SSE framing and the real CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.gateway import Gateway, run_gateway
from tests.fakes.anthropic_upstream import AnthropicUpstream
from tests.fakes.gemini_upstream import GeminiUpstream
from tests.fakes.openai_upstream import OpenAIUpstream
from tests.fakes.server import serve

MASTER_KEY = "sk-master-e2e-0123456789"
APP_KEY = "sk-relay-static-e2e-abcdefghijklmnop"
LIMITED_KEY = "sk-relay-limited-e2e-qrstuvwxyz012345"
PROVIDER_KEY = "sk-provider-secret-never-shown-42"


@dataclass
class Upstreams:
    openai: OpenAIUpstream
    anthropic: AnthropicUpstream
    gemini: GeminiUpstream
    urls: dict[str, str]

    def reset(self) -> None:
        for fake in (self.openai, self.anthropic, self.gemini):
            fake.reset()


def gateway_config(urls: dict[str, str]) -> dict[str, Any]:
    def target(provider: str, base: str) -> dict[str, Any]:
        return {"provider": provider, "model": f"{provider}-model", "api_key": PROVIDER_KEY, "base_url": base}

    return {
        "server": {"master_key": MASTER_KEY, "heartbeat": 0.2, "max_body_bytes": 65536},
        "keys": [
            {"key": APP_KEY, "name": "app", "metadata": {"team": "e2e"}},
            {"key": LIMITED_KEY, "name": "limited", "models": ["mock"]},
        ],
        # Retries are off here so each scripted upstream error reaches the client as it is: these
        # modules test wire formats and error mapping; test_chaos.py tests retries and failover.
        "models": [
            {"name": name, "targets": targets, "retry": {"max_retries": 0}}
            for name, targets in (
                ("gpt", [target("openai", urls["openai"] + "/v1")]),
                ("claude", [target("anthropic", urls["anthropic"])]),
                ("gem", [target("gemini", urls["gemini"])]),
                ("embed", [target("openai", urls["openai"] + "/v1")]),
                ("mock", [{"provider": "mock", "options": {"text": "mock says hi"}}]),
            )
        ],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstreams() -> AsyncIterator[Upstreams]:
    async with AsyncExitStack() as stack:
        fakes = Upstreams(OpenAIUpstream(), AnthropicUpstream(), GeminiUpstream(), {})
        for name in ("openai", "anthropic", "gemini"):
            fakes.urls[name] = await stack.enter_async_context(serve(getattr(fakes, name).app()))
        yield fakes


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    async with run_gateway(gateway_config(upstreams.urls), tmp_path_factory.mktemp("gw")) as gw:
        yield gw


@pytest.fixture(autouse=True)
def _clean_fakes(request: pytest.FixtureRequest) -> None:
    if "upstreams" in request.fixturenames:
        request.getfixturevalue("upstreams").reset()
