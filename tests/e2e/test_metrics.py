"""``/metrics`` after a scripted run through the real server, one worker and two.

N unary calls and S streams answered, K calls to a dead upstream, one retry, one fallback: the
counters, histograms, token and cost totals read back from the exposition text must equal what
the run did (tokens and cost as the answers reported them). With ``--workers 2`` the calls are
spread over both workers and every scrape, whichever worker answers it, must show the totals.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.gateway import free_port, run_gateway
from tests.fakes.openai_upstream import OpenAIUpstream, Reply
from tests.fakes.server import serve
from tests.services import require

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "sk-relay-metrics-e2e-0123456789abcdef"
PRICE = {"input": 1.0, "output": 2.0}
N, S, K = 12, 6, 4
RPM, TPM = 100, 1_000_000
ROUTE = "/v1/chat/completions"
PROMPT = [{"role": "user", "content": "one two three"}]  # the fake counts words: 3 in, 5 out
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def config(base: str, dead: str, tier: str) -> dict[str, Any]:
    def openai(name: str, url: str) -> dict[str, Any]:
        return {"provider": "openai", "model": "gpt-4o-mini", "base_url": url, "price": PRICE, "name": name}

    no_retry = {"max_retries": 0}
    return {
        "keys": [
            {"key": KEY, "name": "metrics", "tier": tier, "metadata": {"team": "search", "feature": "chat"}}
        ],
        # The workers count the tier's limits together in Redis (its own counters per run).
        "state": {"redis": {"url": "redis://127.0.0.1:6379/0"}},
        "tiers": {tier: {"rpm": RPM, "tpm": TPM}},
        "budgets": [{"scope": "key", "limit_usd": 1.0}],
        "telemetry": {"tag_labels": ["feature"]},
        "models": [
            {"name": "ok", "targets": [openai("fake", base)]},
            {"name": "down", "targets": [openai("dead", dead)], "retry": no_retry},
            {"name": "flaky", "targets": [openai("flaky", base)], "retry": {"max_retries": 1, "base": 0.01}},
            {"name": "withfb", "targets": [openai("dead2", dead)], "retry": no_retry, "fallbacks": ["ok"]},
        ],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake() -> AsyncIterator[tuple[OpenAIUpstream, str]]:
    upstream = OpenAIUpstream()
    async with serve(upstream.app()) as url:
        yield upstream, url + "/v1"


async def call(session: aiohttp.ClientSession, url: str, model: str, *, stream: bool = False) -> Any:
    body = {"model": model, "messages": PROMPT, "stream": stream}
    async with session.post(url + ROUTE, json=body, headers={"authorization": f"Bearer {KEY}"}) as resp:
        text = await resp.text()
        return resp.status, dict(resp.headers), text


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def workers_up(url: str, workers: int) -> None:
    """``/healthz`` answers once one worker is up; wait (bounded) until all of them count."""
    for _ in range(200):
        if total(await scrape(url), "llmrelay_worker_processes") == workers:
            return
        await asyncio.sleep(0.05)  # polling starting processes, bounded to 10 s
    raise AssertionError(f"{workers} workers did not come up")


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.mark.parametrize("workers", [1, 2])
async def test_metrics_equal_a_scripted_run(
    workers: int, fake: tuple[OpenAIUpstream, str], tmp_path: Path
) -> None:
    upstream, base = fake
    upstream.reset()
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every attempt is ConnectionFailed
    extra = ("--workers", "2") if workers == 2 else ()
    require(6379, "Redis")
    tier = f"t{uuid.uuid4().hex[:12]}"
    async with run_gateway(config(base, dead, tier), tmp_path, extra_args=extra) as gw:
        await workers_up(gw.url, workers)

        # Separate connections, concurrently: with two workers the kernel spreads them.
        async def one(model: str, stream: bool = False) -> tuple[int, dict[str, str], str]:
            async with aiohttp.ClientSession() as session:
                return await call(session, gw.url, model, stream=stream)

        started, run_started = time.monotonic(), time.time()
        unary = await asyncio.gather(*(one("ok") for _ in range(N)))
        streams = await asyncio.gather(*(one("ok", stream=True) for _ in range(S)))
        failed = await asyncio.gather(*(one("down") for _ in range(K)))
        upstream.script(Reply({"error": {"message": "boom", "type": "server_error"}}, status=500))
        retried = await one("flaky")
        fell_back = await one("withfb")

        assert all(status == 200 for status, _, _ in (*unary, *streams, retried, fell_back))
        assert all(status == 502 for status, _, _ in failed)
        assert retried[1]["x-llmrelay-attempts"] == "2"
        assert fell_back[1]["x-llmrelay-fallbacks"] == "1"
        usages = [json.loads(text)["usage"] for _, _, text in (*unary, retried, fell_back)]
        assert {(u["prompt_tokens"], u["completion_tokens"]) for u in usages} == {(3, 5)}
        costs = [float(headers["x-llmrelay-cost"]) for _, headers, _ in (*unary, retried, fell_back)]
        for _, _, text in streams:
            cost_line = next(line for line in text.splitlines() if line.startswith(": x-llmrelay-cost="))
            costs.append(float(cost_line.split("=", 1)[1]))

        for _ in range(4 if workers == 2 else 1):  # any worker answers with the totals
            m = await scrape(gw.url)
            ok = {
                "route": ROUTE,
                "alias": "ok",
                "target": "fake",
                "provider": "openai",
                "status_class": "2xx",
            }
            assert total(m, "llmrelay_requests_total", **ok) == N + S
            assert total(m, "llmrelay_request_duration_seconds_count", **ok) == N + S
            assert total(m, "llmrelay_requests_total", alias="down", status_class="5xx") == K
            assert total(m, "llmrelay_requests_total", alias="withfb", target="fake", status_class="2xx") == 1
            assert total(m, "llmrelay_requests_total") == N + S + K + 2
            assert (
                total(m, "llmrelay_upstream_errors_total", target="dead", error_type="ConnectionFailed") == K
            )
            assert total(m, "llmrelay_upstream_errors_total", target="dead2") == 1
            assert total(m, "llmrelay_upstream_errors_total", target="flaky", error_type="UpstreamError") == 1
            assert total(m, "llmrelay_retries_total", alias="flaky") == 1
            assert total(m, "llmrelay_retries_total") == 1
            assert total(m, "llmrelay_fallbacks_total", alias="withfb") == 1
            # overhead: every call that reached an upstream, unary and streamed apart
            assert total(m, "llmrelay_overhead_seconds_count", alias="ok", stream="false") == N
            assert total(m, "llmrelay_overhead_seconds_count", alias="ok", stream="true") == S
            assert total(m, "llmrelay_overhead_seconds_count") == N + S + K + 2
            assert 0 < total(m, "llmrelay_overhead_seconds_sum") < 1.0
            # streams
            assert total(m, "llmrelay_time_to_first_token_seconds_count", alias="ok") == S
            gaps = total(m, "llmrelay_inter_token_gap_seconds_count", alias="ok")
            assert gaps >= S and gaps % S == 0  # every stream has the same chunks
            assert total(m, "llmrelay_output_tokens_per_second_count", alias="ok") <= S
            # tokens and cost, by key, team and the configured tag
            who = {"key": "static_metrics", "team": "search", "feature": "chat"}
            answered = N + S + 2
            assert total(m, "llmrelay_tokens_total", kind="input", **who) == 3 * answered
            assert total(m, "llmrelay_tokens_total", kind="output", **who) == 5 * answered
            assert total(m, "llmrelay_tokens_total", kind="cached_input") == 0
            # a fallback's tokens belong to the alias the caller asked for
            assert total(m, "llmrelay_tokens_total", alias="ok", kind="output") == 5 * (N + S)
            assert total(m, "llmrelay_tokens_total", alias="withfb", kind="output") == 5
            assert total(m, "llmrelay_cost_usd_total", **who) == pytest.approx(sum(costs))
            assert sum(costs) == pytest.approx(answered * (3 * 1.0 + 5 * 2.0) / 1e6)
            # breakers: one series per target, all closed, no worker with one open
            for target in ("ok:fake", "down:dead", "flaky:flaky", "withfb:dead2"):
                assert m[("llmrelay_circuit_state", frozenset({("target", target)}))] == 0
                assert m[("llmrelay_circuit_open", frozenset({("target", target)}))] == 0
            # rate-limit headroom of the key's tier: every call took one request of RPM, which
            # refills one every 60 / RPM s since the run started
            limited = {"key": "static_metrics", "tier": tier}
            assert total(m, "llmrelay_ratelimit_limit", kind="requests", **limited) == RPM
            assert total(m, "llmrelay_ratelimit_limit", kind="tokens", **limited) == TPM
            calls = N + S + K + 2
            refilled = (time.monotonic() - started) / (60 / RPM)
            left = total(m, "llmrelay_ratelimit_remaining", kind="requests", **limited)
            assert RPM - calls <= left <= RPM - calls + refilled + 1
            # tokens: the reservation (estimate) is refunded down to the usage at once, so what is
            # left may be back to the whole limit; the refill time is this run's
            assert 0 < total(m, "llmrelay_ratelimit_remaining", kind="tokens", **limited) <= TPM
            refilled_at = total(m, "llmrelay_ratelimit_refilled_timestamp_seconds", kind="tokens", **limited)
            assert run_started <= refilled_at <= time.time() + 60
            # the key's budget: the spend its last call saw, that call's cost included
            budget = {"budget": "key=*/monthly", "subject": "static_metrics"}
            assert total(m, "llmrelay_budget_spent_usd", **budget) == pytest.approx(sum(costs))
            assert total(m, "llmrelay_budget_limit_usd", **budget) == 1.0


async def test_access_log_line_carries_trace_attempts_overhead_and_cost(
    fake: tuple[OpenAIUpstream, str], tmp_path: Path
) -> None:
    """The caller's traceparent reaches the upstream unchanged (tracing off) and names the trace in
    the log line; the line also has the attempts, fallbacks, overhead and cost of the call."""
    upstream, base = fake
    upstream.reset()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    trace = "0af7651916cd43dd8448eb211c80319c"
    parent = f"00-{trace}-b7ad6b7169203331-01"
    async with (
        run_gateway(config(base, dead, f"t{uuid.uuid4().hex[:12]}"), tmp_path) as gw,
        aiohttp.ClientSession() as session,
    ):
        headers = {"authorization": f"Bearer {KEY}", "traceparent": parent, "x-request-id": "traced-1"}
        body = {"model": "withfb", "messages": PROMPT}
        async with session.post(gw.url + ROUTE, json=body, headers=headers) as resp:
            assert resp.status == 200
            cost = float(resp.headers["x-llmrelay-cost"])
        bad = {**headers, "traceparent": "00-zz-nope-01", "x-request-id": "traced-2"}
        async with session.post(gw.url + ROUTE, json=body, headers=bad) as resp:
            assert resp.status == 200
        assert "traceparent" not in upstream.last.headers  # a malformed one is dropped, not forwarded
        for _ in range(100):  # the line is written as the request ends; bounded wait for the file
            lines = {line["request_id"]: line for line in gw.access_lines()}
            if "traced-2" in lines:
                break
            await asyncio.sleep(0.05)
    assert upstream.requests[-2].headers["traceparent"] == parent
    line = lines["traced-1"]
    assert line["trace_id"] == trace
    assert (line["attempts"], line["fallbacks"]) == (2, 1)
    assert line["model"] == "withfb" and line["target"] == "fake"
    assert line["cost_usd"] == pytest.approx(cost)
    assert 0 <= line["overhead_ms"] < line["latency_ms"]
    assert "trace_id" not in lines["traced-2"]
