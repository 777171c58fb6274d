"""Two ``llmrelay serve`` replicas with PostgreSQL state and a shared Redis: what one replica
records, the other sees. An ``Idempotency-Key`` repeated on the other replica replays the first
answer instead of calling the upstream again, a stored Responses API answer continues there, and
a key created through one replica's admin API is in the other's audit log.
With PostgreSQL alone these records stayed in each process (a retry through the load balancer
ran twice). A Redis that is down refuses keyed calls with a 503 rather than run them unguarded."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from tests.e2e.gateway import free_port, run_gateway
from tests.pg import pg_schema
from tests.services import require

KEY = "sk-relay-state-replicas-0123456789"
HEADERS = {"authorization": f"Bearer {KEY}"}
MASTER = "sk-master-state-replicas-0123456789"


async def test_replicas_share_idempotency_stored_responses_and_the_audit_log(tmp_path: Path) -> None:
    require(6379, "Redis")
    async with pg_schema("replicas") as url, AsyncExitStack() as stack:
        config = {
            # The shared Redis forgets these records soon after the test.
            "server": {"idempotency_ttl": 120, "responses_ttl": 120, "master_key": MASTER},
            "keys": [{"key": KEY}],
            "state": {"url": url, "redis": {"url": "redis://127.0.0.1:6379/0"}},
            "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
        }
        one, two = [
            await stack.enter_async_context(run_gateway(config, tmp_path / name))
            for name in ("one", "two")
            if not (tmp_path / name).mkdir()
        ]
        session = await stack.enter_async_context(aiohttp.ClientSession())
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        idem = {**HEADERS, "idempotency-key": f"k-{uuid.uuid4().hex}"}
        async with session.post(one.url + "/v1/chat/completions", json=body, headers=idem) as r:
            assert r.status == 200, await r.text()
            first = await r.json()
            assert "idempotent-replayed" not in r.headers
        async with session.post(two.url + "/v1/chat/completions", json=body, headers=idem) as r:
            assert r.status == 200, await r.text()
            assert r.headers.get("idempotent-replayed") == "true"
            assert (await r.json())["id"] == first["id"]
        # Another body under the same key is refused on the other replica too.
        other = {**body, "messages": [{"role": "user", "content": "something else"}]}
        async with session.post(two.url + "/v1/chat/completions", json=other, headers=idem) as r:
            assert r.status == 422, await r.text()

        turn = {"model": "m", "input": "Remember the word 'otter'."}
        async with session.post(one.url + "/v1/responses", json=turn, headers=HEADERS) as r:
            assert r.status == 200, await r.text()
            stored = await r.json()
        follow = {"model": "m", "input": "Which word?", "previous_response_id": stored["id"]}
        async with session.post(two.url + "/v1/responses", json=follow, headers=HEADERS) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["previous_response_id"] == stored["id"]

        admin = {"authorization": f"Bearer {MASTER}"}
        async with session.post(one.url + "/admin/keys", json={"name": "made-on-one"}, headers=admin) as r:
            assert r.status in (200, 201), await r.text()
            made = await r.json()
        async with session.get(two.url + "/admin/audit", params={"action": "key.create"}, headers=admin) as r:
            assert r.status == 200, await r.text()
            entries = (await r.json())["data"]
        assert [(e["target"], e["details"]["name"]) for e in entries] == [(made["id"], "made-on-one")]


async def test_a_redis_that_is_down_refuses_keyed_calls_and_serves_the_rest(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: Redis is down
    config = {
        "keys": [{"key": KEY}],
        "state": {"redis": {"url": f"redis://127.0.0.1:{port}/0", "timeout": 0.5}},
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
    }
    async with run_gateway(config, tmp_path) as gateway, aiohttp.ClientSession() as session:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        idem = {**HEADERS, "idempotency-key": "k-down"}
        async with session.post(gateway.url + "/v1/chat/completions", json=body, headers=idem) as r:
            assert r.status == 503
            error = (await r.json())["error"]
            assert error["code"] == "idempotency_store_unavailable"
            assert str(port) not in error["message"]
            request_id = r.headers["x-request-id"]
        async with session.post(gateway.url + "/v1/chat/completions", json=body, headers=HEADERS) as r:
            assert r.status == 200, await r.text()
    log = gateway.log_path.read_text()
    lines = [line for line in log.splitlines() if request_id in line]
    assert any('"status":503' in line and "idempotency_store_unavailable" in line for line in lines)
    assert any("the idempotency store cannot be reached (RedisDown)" in line for line in lines)
