"""Several keys per target: a refused key is benched and the next one tried before the error
counts against the breaker; a 429 moves on only when the keys belong to separate accounts.

Through the whole Relay pipeline (router, retry, breaker, provider) against a fake OpenAI upstream
over HTTP that really checks the ``Authorization`` key it is sent.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmrelay import Relay
from llmrelay.clock import FakeClock
from llmrelay.config import load_config
from llmrelay.errors import RateLimited, RelayError, UpstreamAuthError
from tests.fakes.openai_upstream import OpenAIUpstream, Reply
from tests.fakes.server import serve

OLD, GOOD, OTHER = "sk-old-key-000000000001", "sk-good-key-00000000002", "sk-other-key-0000000003"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[OpenAIUpstream, str]]:
    upstream = OpenAIUpstream(accepted_keys={GOOD})
    async with serve(upstream.app()) as url:
        yield upstream, url + "/v1"


def relay(url: str, clock: FakeClock, **target: Any) -> Relay:
    config = {
        "models": [
            {
                "name": "fast",
                "targets": [{"provider": "openai", "model": "m", "base_url": url, "name": "t", **target}],
                "retry": {"max_retries": 0},
                "circuit_breaker": {"failures": 1},
            }
        ]
    }
    return Relay(load_config(config), clock=clock, rand=random.Random(3).random)


def keys_sent(upstream: OpenAIUpstream) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in upstream.requests]


async def test_a_refused_key_is_benched_and_the_next_tried_without_tripping_the_breaker(
    fake: tuple[OpenAIUpstream, str],
) -> None:
    upstream, url = fake
    clock = FakeClock()
    async with relay(url, clock, api_key=OLD, api_keys=[GOOD], key_cooldown=60) as r:
        replies = [await r.chat("fast", HI) for _ in range(5)]
        async with r.stream("fast", HI) as stream:
            assert "hi" in "".join([c.text async for c in stream])
        assert r.circuits()[0]["state"] == "closed"  # failures: 1, so one counted failure opens it
        assert keys_sent(upstream) == [OLD] + [GOOD] * 6  # benched after its 401: not tried again
        clock.advance(60)
        await r.chat("fast", HI)  # the bench is over: the first key is tried again, then benched
        assert keys_sent(upstream)[-2:] == [OLD, GOOD]
    assert all(reply.target == "t" for reply in replies)


async def test_every_key_refused_counts_once_against_the_breaker(fake: tuple[OpenAIUpstream, str]) -> None:
    upstream, url = fake
    async with relay(url, FakeClock(), api_keys=[OLD, OTHER]) as r:
        with pytest.raises(UpstreamAuthError) as info:
            await r.chat("fast", HI)
        assert info.value.upstream_status == 401
        assert keys_sent(upstream) == [OLD, OTHER]
        assert r.circuits()[0]["state"] == "open"
        assert OLD not in str(info.value) and OTHER not in str(info.value)


RATE_LIMITED = Reply(
    {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
    status=429,
    headers={"retry-after": "7"},
)


async def test_429_tries_the_next_key_only_for_separate_accounts(fake: tuple[OpenAIUpstream, str]) -> None:
    upstream, url = fake
    upstream.accepted_keys = None
    upstream.script(RATE_LIMITED)
    async with relay(url, FakeClock(), api_keys=[OLD, OTHER]) as r:  # shared: one account's limit
        with pytest.raises(RateLimited):
            await r.chat("fast", HI)
    assert keys_sent(upstream) == [OLD]

    upstream.reset()
    upstream.script(RATE_LIMITED)
    clock = FakeClock()
    async with relay(url, clock, api_keys=[OLD, OTHER], key_accounts="separate") as r:
        await r.chat("fast", HI)
        await r.chat("fast", HI)
        clock.advance(7)  # the first key's bench is its Retry-After
        await r.chat("fast", HI)
    assert keys_sent(upstream) == [OLD, OTHER, OTHER, OLD]


async def test_an_upstream_echoing_a_ring_key_has_it_scrubbed(fake: tuple[OpenAIUpstream, str]) -> None:
    upstream, url = fake
    upstream.accepted_keys = None
    odd_key = "zz-rotating-value-00000004"  # not shaped like a key: only the credential set knows it
    error = {"error": {"message": f"quota check failed for {odd_key}", "type": "invalid_request_error"}}
    upstream.script(Reply(error, status=400))
    async with relay(url, FakeClock(), api_keys=[odd_key, OTHER]) as r:
        with pytest.raises(RelayError) as info:
            await r.chat("fast", HI)
    assert odd_key not in str(info.value) and "[redacted]" in info.value.message
