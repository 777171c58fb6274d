"""A target whose own provider key is rejected is down: fail over at once and trip its breaker.

The issue this guards: one bad-key target and one good one behind an alias, and about half of all
requests failed while both breakers stayed closed. Here the bad target's fake upstream really
rejects the key it is sent (Anthropic answers 401, Gemini 400 ``API_KEY_INVALID``), through the
whole Relay pipeline (router, retry, circuit breaker, provider).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmrelay import AllTargetsFailed, Relay
from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from tests.fakes.anthropic_upstream import AnthropicUpstream
from tests.fakes.gemini_upstream import GeminiUpstream
from tests.fakes.scripted import ScriptedUpstream
from tests.fakes.server import serve

GOOD_KEY = "right-provider-key-0001"
BAD_KEY = "wrong-provider-key-0002"
HEADER = {"anthropic": "x-api-key", "gemini": "x-goog-api-key"}
TRIP_AFTER = 3
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["anthropic", "gemini"])
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, ScriptedUpstream, str]]:
    name: str = request.param
    upstream = (
        AnthropicUpstream(api_key=GOOD_KEY) if name == "anthropic" else GeminiUpstream(api_key=GOOD_KEY)
    )
    async with serve(upstream.app()) as url:
        yield name, upstream, url


def relay(name: str, url: str, keys: list[str]) -> Relay:
    targets: list[dict[str, Any]] = [
        {"provider": name, "name": f"key{n}", "model": f"{name}-model", "api_key": key, "base_url": url}
        for n, key in enumerate(keys)
    ]
    config = {
        "models": [
            {
                "name": "fast",
                "targets": targets,
                "retry": {"max_retries": 2},
                "circuit_breaker": {"failures": TRIP_AFTER},
            }
        ]
    }
    return Relay(load_config(config), clock=FakeClock(), rand=random.Random(7).random)


async def test_bad_key_target_fails_over_and_trips_its_breaker(
    fake: tuple[str, ScriptedUpstream, str],
) -> None:
    name, upstream, url = fake
    async with relay(name, url, [BAD_KEY, GOOD_KEY]) as r:
        replies = [await r.chat("fast", HI) for _ in range(200)]
        circuits = {c["target"]: c for c in r.circuits()}
    assert {reply.target for reply in replies} == {"key1"}  # every request succeeded, on the good key
    bad_calls = [req for req in upstream.requests if req.headers.get(HEADER[name]) == BAD_KEY]
    assert len(bad_calls) == TRIP_AFTER  # no retries on the bad key; nothing once its circuit opened
    assert circuits["fast:key0"]["state"] == "open"
    assert circuits["fast:key1"]["state"] == "closed"


async def test_only_bad_keys_is_a_gateway_error_naming_every_target(
    fake: tuple[str, ScriptedUpstream, str],
) -> None:
    name, _, url = fake
    async with relay(name, url, [BAD_KEY, BAD_KEY + "b"]) as r:
        with pytest.raises(AllTargetsFailed) as info:
            await r.chat("fast", HI)
    assert info.value.status == 502 and info.value.code == "upstream_auth_error"
    assert [err.code for _, err in info.value.errors] == ["upstream_auth_error"] * 2
    assert BAD_KEY not in str(info.value)
