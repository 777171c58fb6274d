"""Chaos through the real gateway: upstreams that fail 30% of the time, drop streams, or are dead.

Faults injected (tests/fakes/chaos_upstream.py): 500, 502, 503, 529, 429 with and without
Retry-After, connection resets, hangs, slow first byte, and an error event before the first chunk.
Every answer's text is derived from its request, so a corrupted or mixed-up answer is caught.
Run with ``-s`` to see the measured success rate, latency and upstream calls per request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio

from tests.e2e.gateway import Gateway, run_gateway
from tests.fakes.chaos_upstream import ChaosUpstream, answer_for
from tests.fakes.server import serve

pytestmark = pytest.mark.asyncio(loop_scope="module")

MASTER = "sk-master-chaos-0123456789"
HEADERS = {"authorization": f"Bearer {MASTER}"}
TOTAL = 5.0


@dataclass
class Chaos:
    gateway: Gateway
    a: ChaosUpstream
    b: ChaosUpstream
    dropper: ChaosUpstream
    dead: ChaosUpstream
    spare: ChaosUpstream


def target(name: str, url: str, weight: float = 1.0) -> dict[str, Any]:
    return {
        "provider": "openai",
        "name": name,
        "model": "m",
        "api_key": "k",
        "base_url": url + "/v1",
        "weight": weight,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chaos(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chaos]:
    fakes = {
        "a": ChaosUpstream(seed=1),
        "b": ChaosUpstream(seed=2),
        "dropper": ChaosUpstream(fault_rate=0.0, drop_mid_stream=True),
        "dead": ChaosUpstream(fault_rate=0.0),
        "spare": ChaosUpstream(fault_rate=0.0),
    }
    fakes["dead"].dead = True
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(fake.app())) for name, fake in fakes.items()}
        resilience = {
            "retry": {"max_retries": 3, "base": 0.01, "cap": 0.05, "budget_ratio": 1.0},
            "timeout": {"connect": 1, "first_token": 0.5, "idle": 1, "total": TOTAL},
        }
        config = {
            "server": {"master_key": MASTER},
            "models": [
                {"name": "chaos", "targets": [target("a", urls["a"]), target("b", urls["b"])], **resilience},
                {"name": "dropping", "targets": [target("dropper", urls["dropper"])], **resilience},
                {
                    "name": "primary",
                    "targets": [target("dead", urls["dead"], weight=1000), target("spare", urls["spare"])],
                    "retry": {"max_retries": 2, "base": 0.01, "cap": 0.02},
                    "circuit_breaker": {"failures": 3, "cooldown": 60},
                },
            ],
        }
        gateway = await stack.enter_async_context(run_gateway(config, tmp_path_factory.mktemp("chaos")))
        yield Chaos(gateway, fakes["a"], fakes["b"], fakes["dropper"], fakes["dead"], fakes["spare"])


async def chat(
    session: aiohttp.ClientSession, gateway: Gateway, model: str, text: str
) -> tuple[bool, float, dict[str, str]]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    started = time.perf_counter()
    async with session.post(gateway.url + "/v1/chat/completions", json=body, headers=HEADERS) as resp:
        payload = await resp.json()
        ok = resp.status == 200 and payload["choices"][0]["message"]["content"] == answer_for(text)
        return ok, time.perf_counter() - started, dict(resp.headers)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def test_thousand_requests_under_30_percent_faults(chaos: Chaos) -> None:
    gate = asyncio.Semaphore(25)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> tuple[bool, float, dict[str, str]]:
            async with gate:
                return await chat(session, chaos.gateway, "chaos", f"request {i}")

        results = await asyncio.gather(*(one(i) for i in range(1000)))
    succeeded = sum(ok for ok, _, _ in results)
    latencies = [seconds for _, seconds, _ in results]
    upstream_calls = chaos.a.calls + chaos.b.calls
    print(
        f"\nchaos: {succeeded}/1000 succeeded, p50 {percentile(latencies, 0.5) * 1000:.0f} ms,"
        f" p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms,"
        f" upstream calls per request {upstream_calls / 1000:.2f},"
        f" faults injected {sum(v for k, v in (chaos.a.outcomes + chaos.b.outcomes).items() if k != 'ok')}"
    )
    assert succeeded >= 999
    assert max(latencies) < TOTAL + 1.0  # nothing hangs past its deadline
    attempts = [int(headers["x-llmrelay-attempts"]) for ok, _, headers in results if ok]
    assert max(attempts) > 1  # retries did happen


async def test_streams_under_faults_are_whole_or_absent(chaos: Chaos) -> None:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> bool:
            text = f"stream {i}"
            body = {"model": "chaos", "messages": [{"role": "user", "content": text}], "stream": True}
            async with session.post(
                chaos.gateway.url + "/v1/chat/completions", json=body, headers=HEADERS
            ) as resp:
                raw = await resp.read()
            if resp.status != 200:
                return False
            events = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
            assert events[-1] == b"[DONE]", "a 200 stream must end with [DONE] or an error event"
            deltas = [json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1]]
            assert "".join(deltas) == answer_for(text)
            return True

        results = await asyncio.gather(*(one(i) for i in range(200)))
    assert sum(results) >= 199


async def test_a_mid_stream_drop_ends_with_an_error_event_never_a_clean_truncation(chaos: Chaos) -> None:
    body = {"model": "dropping", "messages": [{"role": "user", "content": "long answer"}], "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(chaos.gateway.url + "/v1/chat/completions", json=body, headers=HEADERS) as resp,
    ):
        assert resp.status == 200
        raw = await resp.read()
    events = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    assert b"[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "stream_interrupted"
    assert chaos.dropper.calls == 1  # never retried after the commit point


async def test_a_dead_primary_trips_its_breaker_and_latency_recovers(chaos: Chaos) -> None:
    latencies = []
    async with aiohttp.ClientSession() as session:
        for i in range(40):
            ok, seconds, _ = await chat(session, chaos.gateway, "primary", f"p{i}")
            assert ok
            latencies.append(seconds)
        async with session.get(chaos.gateway.url + "/admin/circuits", headers=HEADERS) as resp:
            circuits = {c["target"]: c for c in (await resp.json())["data"]}
        async with session.get(chaos.gateway.url + "/metrics") as resp:
            exposition = await resp.text()
    assert circuits["primary:dead"]["state"] == "open"
    assert circuits["primary:spare"]["state"] == "closed"
    assert 'llmrelay_circuit_state{target="primary:dead"} 2.0' in exposition
    assert 'llmrelay_circuit_state{target="primary:spare"} 0.0' in exposition
    assert 'llmrelay_circuit_transitions_total{target="primary:dead",to="open"} 1.0' in exposition
    assert 'llmrelay_circuit_open{target="primary:dead"} 1.0' in exposition
    assert chaos.dead.calls == 3  # tried until the breaker opened, then not at all within the cool-down
    after_trip = latencies[5:]
    p99 = percentile(after_trip, 0.99) * 1000
    print(f"\ndead primary: {chaos.dead.calls} calls; p99 after the trip {p99:.1f} ms")
    assert percentile(after_trip, 0.99) < percentile(latencies[:2], 0.5)


async def test_the_openai_sdk_sees_the_same(chaos: Chaos) -> None:
    client = openai.AsyncOpenAI(base_url=chaos.gateway.url + "/v1", api_key=MASTER, max_retries=0)
    gate = asyncio.Semaphore(20)

    async def one(i: int) -> bool:
        async with gate:
            try:
                reply = await client.chat.completions.create(
                    model="chaos", messages=[{"role": "user", "content": f"sdk {i}"}]
                )
            except openai.APIError:
                return False
            return reply.choices[0].message.content == answer_for(f"sdk {i}")

    results = await asyncio.gather(*(one(i) for i in range(300)))
    assert sum(results) >= 299
