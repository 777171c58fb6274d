"""Per-key upstream limits through two real ``llmrelay serve`` processes sharing the real Redis on
6379, in front of a fake OpenAI upstream on 127.0.0.1 that checks the key it is sent: each key's
``rpm`` is spent once across both replicas, then the next key is sent, then the target is rate
limited (429 with ``Retry-After``, or the alias's fallback)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.gateway import Gateway, run_gateway
from tests.fakes.openai_upstream import OpenAIUpstream
from tests.fakes.server import serve
from tests.services import require

APP_KEY = "sk-relay-key-limits-abcdefghijklmnop"
KEY_A, KEY_B = "sk-upstream-key-a-000000000001", "sk-upstream-key-b-000000000002"
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[OpenAIUpstream, list[Gateway], str]]:
    require(6379, "Redis")
    run = uuid.uuid4().hex[:10]  # the targets' names key their counters: other runs never share them
    upstream = OpenAIUpstream(accepted_keys={KEY_A, KEY_B})
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve(upstream.app())) + "/v1"

        def target(name: str, **keys: Any) -> dict[str, Any]:
            return {"provider": "openai", "model": "m", "base_url": url, "name": f"{name}-{run}", **keys}

        config = {
            "server": {"master_key": "sk-master-key-limits-0123456789"},
            "state": {"redis": {"url": "redis://127.0.0.1:6379/0", "on_error": "closed"}},
            "keys": [{"key": APP_KEY, "name": "app"}],
            "models": [
                {
                    "name": "keyed",
                    "targets": [
                        target("keyed", api_keys=[{"key": KEY_A, "rpm": 1}, {"key": KEY_B, "rpm": 1}])
                    ],
                    "retry": {"max_retries": 0},
                },
                {
                    "name": "spilled",
                    "targets": [target("limited", api_keys=[{"key": KEY_A, "rpm": 1}])],
                    "fallbacks": ["spare"],
                    "retry": {"max_retries": 0},
                },
                {"name": "spare", "targets": [target("spare", api_key=KEY_B)]},
            ],
        }
        gateways = []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            gateways.append(await stack.enter_async_context(run_gateway(config, tmp_path / name)))
        yield upstream, gateways, run


async def ask_in_turn(
    gateways: list[Gateway], model: str, times: int
) -> list[tuple[int, Mapping[str, str], Any]]:
    """``times`` requests for ``model``, one after another, to each replica in turn."""
    answers: list[tuple[int, Mapping[str, str], Any]] = []
    async with aiohttp.ClientSession() as session:
        for n in range(times):
            async with session.post(
                gateways[n % len(gateways)].url + "/v1/chat/completions",
                json={"model": model, **BODY},
                headers={"authorization": f"Bearer {APP_KEY}"},
            ) as resp:
                answers.append((resp.status, resp.headers, await resp.json()))
    return answers


def keys_sent(upstream: OpenAIUpstream) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in upstream.requests]


async def test_each_key_once_across_replicas_then_429(
    setup: tuple[OpenAIUpstream, list[Gateway], str],
) -> None:
    upstream, gateways, _ = setup
    # the second goes to the other replica: key A is spent in Redis
    first, second, third = await ask_in_turn(gateways, "keyed", 3)
    assert (first[0], second[0]) == (200, 200)
    assert keys_sent(upstream) == [KEY_A, KEY_B]
    status, headers, body = third
    assert status == 429
    assert body["error"]["code"] == "upstream_rate_limited"
    assert 55 <= int(headers["retry-after"]) <= 60  # one request a minute per key
    assert len(upstream.requests) == 2  # the refused request never reached the upstream


async def test_a_target_whose_keys_are_out_fails_over(
    setup: tuple[OpenAIUpstream, list[Gateway], str],
) -> None:
    upstream, gateways, run = setup
    first, second = await ask_in_turn(gateways, "spilled", 2)
    assert (first[0], second[0]) == (200, 200)
    assert first[1]["x-llmrelay-target"] == f"limited-{run}"
    assert second[1]["x-llmrelay-target"] == f"spare-{run}"
    assert keys_sent(upstream) == [KEY_A, KEY_B]
