"""Virtual keys through the admin API and the CLI, and Idempotency-Key semantics, end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest

from tests.e2e.conftest import APP_KEY, MASTER_KEY, Upstreams
from tests.e2e.gateway import Gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "Hello"}]


async def admin(
    gateway: Gateway, method: str, path: str, body: Any = None, headers: dict[str, str] = ADMIN
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, gateway.url + path, json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


def client(gateway: Gateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


async def test_admin_key_lifecycle(gateway: Gateway) -> None:
    status, created = await admin(
        gateway, "POST", "/admin/keys", {"name": "bot", "models": ["mock"], "metadata": {"team": "x"}}
    )
    assert status == 200 and created["key"].startswith("sk-relay-")
    secret, key_id = created["key"], created["id"]
    assert (await client(gateway, secret).chat.completions.create(model="mock", messages=HELLO)).choices  # type: ignore[arg-type]

    status, listed = await admin(gateway, "GET", "/admin/keys")
    assert status == 200 and key_id in [k["id"] for k in listed["data"]]
    assert secret not in json.dumps(listed)

    status, rotated = await admin(gateway, "POST", f"/admin/keys/{key_id}/rotate", {"grace_seconds": 3600})
    assert status == 200 and rotated["key"] != secret
    for usable in (secret, rotated["key"]):  # the old one is still inside its grace period
        await client(gateway, usable).chat.completions.create(model="mock", messages=HELLO)  # type: ignore[arg-type]

    status, _ = await admin(gateway, "DELETE", f"/admin/keys/{key_id}")
    assert status == 200
    for revoked in (secret, rotated["key"]):
        with pytest.raises(openai.AuthenticationError):
            await client(gateway, revoked).chat.completions.create(model="mock", messages=HELLO)  # type: ignore[arg-type]


async def test_admin_trims_model_names(gateway: Gateway) -> None:
    status, created = await admin(gateway, "POST", "/admin/keys", {"models": [" mock", "gpt ", "", "mock"]})
    assert status == 200 and created["models"] == ["mock", "gpt"]
    status, shown = await admin(gateway, "GET", f"/admin/keys/{created['id']}")
    assert status == 200 and shown["models"] == ["mock", "gpt"]
    reply = await client(gateway, created["key"]).chat.completions.create(model="mock", messages=HELLO)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "mock says hi"


async def test_rotating_a_revoked_key_is_a_conflict(gateway: Gateway) -> None:
    status, created = await admin(gateway, "POST", "/admin/keys", {"name": "gone"})
    key_id = created["id"]
    assert (await admin(gateway, "DELETE", f"/admin/keys/{key_id}"))[0] == 200
    status, body = await admin(gateway, "POST", f"/admin/keys/{key_id}/rotate", {"grace_seconds": 60})
    assert status == 409
    assert body["error"]["code"] == "key_revoked" and key_id in body["error"]["message"]
    assert "sk-relay-" not in json.dumps(body)
    status, shown = await admin(gateway, "GET", f"/admin/keys/{key_id}")
    assert status == 200 and shown["revoked_at"] is not None and shown["display"] == created["display"]


async def test_a_negative_grace_is_a_400(gateway: Gateway) -> None:
    status, created = await admin(gateway, "POST", "/admin/keys", {})
    status, body = await admin(gateway, "POST", f"/admin/keys/{created['id']}/rotate", {"grace_seconds": -1})
    assert status == 400 and "grace_seconds" in body["error"]["message"]
    status, shown = await admin(gateway, "GET", f"/admin/keys/{created['id']}")
    assert shown["display"] == created["display"]  # not rotated


async def test_admin_api_needs_the_master_key_or_an_admin_scope(gateway: Gateway) -> None:
    status, body = await admin(gateway, "GET", "/admin/keys", headers={"authorization": f"Bearer {APP_KEY}"})
    assert status == 403 and body["error"]["code"] == "insufficient_scope"  # a valid key, no admin scope
    status, body = await admin(
        gateway, "GET", "/admin/keys", headers={"authorization": "Bearer sk-relay-nope"}
    )
    assert status == 401 and body["error"]["type"] == "authentication_error"


async def post_chat(
    gateway: Gateway, body: dict[str, Any], key: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"authorization": f"Bearer {APP_KEY}", "idempotency-key": key}
    async with (
        aiohttp.ClientSession() as s,
        s.post(gateway.url + "/v1/chat/completions", json=body, headers=headers) as r,
    ):
        return r.status, await r.json(), dict(r.headers)


async def test_idempotent_replay_reaches_upstream_once(gateway: Gateway, upstreams: Upstreams) -> None:
    body = {"model": "gpt", "messages": HELLO}
    first = await post_chat(gateway, body, "idem-1")
    second = await post_chat(gateway, body, "idem-1")
    assert first[0] == second[0] == 200
    assert first[1] == second[1]
    assert second[2].get("idempotent-replayed") == "true"
    assert len(upstreams.openai.requests) == 1

    status, error, _ = await post_chat(gateway, {**body, "temperature": 0.5}, "idem-1")
    assert status == 422 and error["error"]["message"]


async def test_concurrent_duplicates_reach_upstream_once(gateway: Gateway, upstreams: Upstreams) -> None:
    upstreams.openai.hold()
    body = {"model": "gpt", "messages": [{"role": "user", "content": "together"}]}
    calls = [asyncio.ensure_future(post_chat(gateway, body, "idem-2")) for _ in range(5)]
    await asyncio.wait_for(upstreams.openai.received.wait(), 5)
    upstreams.openai.release()
    results = await asyncio.gather(*calls)
    assert {r[0] for r in results} == {200}
    assert len({json.dumps(r[1], sort_keys=True) for r in results}) == 1
    assert len(upstreams.openai.requests) == 1


async def test_idempotent_stream_is_replayed_as_a_stream(gateway: Gateway, upstreams: Upstreams) -> None:
    body = {"model": "gpt", "messages": HELLO, "stream": True}
    headers = {"authorization": f"Bearer {APP_KEY}", "idempotency-key": "idem-3"}
    streams = []
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(gateway.url + "/v1/chat/completions", json=body, headers=headers) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                streams.append(await r.read())
    assert streams[0].count(b"data: ") == streams[1].count(b"data: ") > 2
    assert streams[1].rstrip().endswith(b"data: [DONE]")
    assert len(upstreams.openai.requests) == 1


async def test_a_key_cannot_be_created_already_expired(gateway: Gateway) -> None:
    status, body = await admin(gateway, "POST", "/admin/keys", {"name": "stillborn", "expires_at": 1000.0})
    assert status == 400 and body["error"]["param"] == "expires_at"
    status, listed = await admin(gateway, "GET", "/admin/keys")
    assert "stillborn" not in [k["name"] for k in listed["data"]]
