"""Key scopes through the real server: each denial is a 403 in the caller's shape, admin scopes
stand in for the master key, and every key and config change lands in ``GET /admin/audit``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.e2e.conftest import MASTER_KEY, PROVIDER_KEY, Upstreams
from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROUTE_KEY = "sk-relay-scope-route-0123456789abcdef"
FAR_KEY = "sk-relay-scope-far-0123456789abcdef01"
NEAR_KEY = "sk-relay-scope-near-0123456789abcdef0"
CAP_KEY = "sk-relay-scope-cap-0123456789abcdef01"
READ_KEY = "sk-relay-scope-read-0123456789abcdef0"
PLAIN_KEY = "sk-relay-scope-plain-0123456789abcdef"
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gw(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    target = {
        "provider": "openai",
        "model": "m",
        "api_key": PROVIDER_KEY,
        "base_url": upstreams.urls["openai"] + "/v1",
    }
    config = {
        "server": {"master_key": MASTER_KEY},
        "keys": [
            {"key": ROUTE_KEY, "name": "route", "routes": ["/v1/chat/completions"]},
            {"key": FAR_KEY, "name": "far", "ips": ["10.0.0.0/8", "2001:db8::/32"]},
            {"key": NEAR_KEY, "name": "near", "ips": ["127.0.0.0/8"]},
            {"key": CAP_KEY, "name": "cap", "max_tokens": 5},
            {"key": READ_KEY, "name": "reader", "scopes": ["admin:read"]},
            {"key": PLAIN_KEY, "name": "plain"},
        ],
        "models": [{"name": "gpt", "targets": [target], "retry": {"max_retries": 0}}],
    }
    async with run_gateway(config, tmp_path_factory.mktemp("scopes")) as gateway:
        yield gateway


async def call(
    gw: Gateway, method: str, path: str, key: str, body: Any = None, **query: Any
) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, gw.url + path, json=body, headers=headers, params=query) as r,
    ):
        return r.status, await r.json()


async def test_a_route_scoped_key_calls_its_routes_only(gw: Gateway) -> None:
    assert (await call(gw, "POST", "/v1/chat/completions", ROUTE_KEY, CHAT))[0] == 200
    status, body = await call(gw, "POST", "/v1/messages", ROUTE_KEY, MESSAGES)
    assert status == 403 and body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert "/v1/messages" in body["error"]["message"]
    status, body = await call(gw, "GET", "/v1/models", ROUTE_KEY)
    assert status == 403 and body["error"]["code"] == "route_not_allowed"
    status, body = await call(gw, "GET", "/v1/models/gpt", ROUTE_KEY)
    assert status == 403 and body["error"]["code"] == "route_not_allowed"


async def test_an_ip_scoped_key_works_from_its_networks_only(gw: Gateway) -> None:
    status, body = await call(gw, "POST", "/v1/chat/completions", FAR_KEY, CHAT)
    assert status == 403 and body["error"]["code"] == "ip_not_allowed"
    status, body = await call(gw, "POST", "/v1/messages", FAR_KEY, MESSAGES)
    assert status == 403 and body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert (await call(gw, "POST", "/v1/chat/completions", NEAR_KEY, CHAT))[0] == 200


async def test_max_tokens_is_capped_and_refused_above_the_cap(gw: Gateway, upstreams: Upstreams) -> None:
    status, body = await call(gw, "POST", "/v1/chat/completions", CAP_KEY, {**CHAT, "max_tokens": 50})
    assert (
        status == 403
        and body["error"]["code"] == "max_tokens_exceeded"
        and body["error"]["param"] == "max_tokens"
    )
    status, body = await call(gw, "POST", "/v1/messages", CAP_KEY, MESSAGES)
    assert status == 403 and body["type"] == "error" and "limit of 5" in body["error"]["message"]
    assert (await call(gw, "POST", "/v1/chat/completions", CAP_KEY, CHAT))[0] == 200
    assert upstreams.openai.last.json["max_tokens"] == 5  # asked for nothing: ran with the cap
    assert (await call(gw, "POST", "/v1/chat/completions", CAP_KEY, {**CHAT, "max_tokens": 3}))[0] == 200
    assert upstreams.openai.last.json["max_tokens"] == 3


async def test_admin_scopes_stand_in_for_the_master_key(gw: Gateway) -> None:
    status, made = await call(gw, "POST", "/admin/keys", MASTER_KEY, {"name": "ops", "scopes": ["admin"]})
    assert status == 200 and made["scopes"] == ["admin"]
    ops = made["key"]
    status, child = await call(
        gw, "POST", "/admin/keys", ops, {"name": "child", "routes": ["/v1/embeddings"]}
    )
    assert status == 200 and child["routes"] == ["/v1/embeddings"]
    assert (await call(gw, "DELETE", f"/admin/keys/{child['id']}", ops))[0] == 200

    assert (await call(gw, "GET", "/admin/keys", READ_KEY))[0] == 200
    assert (await call(gw, "GET", "/admin/audit", READ_KEY))[0] == 200
    status, body = await call(gw, "POST", "/admin/keys", READ_KEY, {"name": "nope"})
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    status, body = await call(gw, "POST", f"/admin/keys/{child['id']}/rotate", READ_KEY)
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    for key in (PLAIN_KEY, ROUTE_KEY):
        status, body = await call(gw, "GET", "/admin/audit", key)
        assert status == 403 and body["error"]["code"] == "insufficient_scope"

    status, walled = await call(
        gw, "POST", "/admin/keys", MASTER_KEY, {"scopes": ["admin"], "ips": ["10.0.0.0/8"]}
    )
    status, body = await call(gw, "GET", "/admin/keys", walled["key"])
    assert status == 403 and body["error"]["code"] == "ip_not_allowed"

    status, entries = await call(gw, "GET", "/admin/audit", MASTER_KEY, action="key.revoke")
    assert entries["data"][0]["actor"] == made["id"] and entries["data"][0]["target"] == child["id"]


@pytest.mark.parametrize(
    ("spec", "param"),
    [
        ({"scopes": ["root"]}, "scopes"),
        ({"routes": ["/admin/keys"]}, "routes"),
        ({"ips": ["10.0.0.1/8"]}, "ips"),
        ({"ips": ["example.org"]}, "ips"),
        ({"max_tokens": 0}, None),
    ],
)
async def test_bad_scopes_are_a_400_naming_the_field(
    gw: Gateway, spec: dict[str, Any], param: str | None
) -> None:
    status, body = await call(gw, "POST", "/admin/keys", MASTER_KEY, spec)
    assert status == 400 and (param is None or body["error"]["param"] == param)


async def test_the_audit_log_says_who_changed_what_and_when(gw: Gateway) -> None:
    status, made = await call(gw, "POST", "/admin/keys", MASTER_KEY, {"name": "audited", "models": ["gpt"]})
    await call(gw, "POST", f"/admin/keys/{made['id']}/rotate", MASTER_KEY, {"grace_seconds": 5})
    await call(gw, "DELETE", f"/admin/keys/{made['id']}", MASTER_KEY)
    status, log = await call(gw, "GET", "/admin/audit", MASTER_KEY, limit=3)
    assert status == 200
    assert [(e["action"], e["actor"], e["target"]) for e in log["data"]] == [
        ("key.revoke", "master", made["id"]),
        ("key.rotate", "master", made["id"]),
        ("key.create", "master", made["id"]),
    ]
    assert log["data"][1]["details"] == {"grace_seconds": 5}
    assert log["data"][2]["details"]["name"] == "audited" and log["data"][2]["details"]["models"] == ["gpt"]
    assert log["data"][0]["id"] > log["data"][1]["id"] and log["data"][0]["at"] >= log["data"][2]["at"] > 0
    assert made["key"] not in str(log)  # no secret, no hash
    status, older = await call(gw, "GET", "/admin/audit", MASTER_KEY, limit=1, before=log["data"][2]["id"])
    assert older["data"][0]["id"] < log["data"][2]["id"]
    status, started = await call(gw, "GET", "/admin/audit", MASTER_KEY, action="config.changed")
    assert started["data"][0]["actor"] == "server" and len(started["data"][0]["details"]["digest"]) == 64
    status, _body = await call(gw, "GET", "/admin/audit", MASTER_KEY, limit=0)
    assert status == 400


async def test_a_restarted_server_with_the_same_config_adds_no_config_entry(tmp_path: Path) -> None:
    config: dict[str, Any] = {
        "server": {"master_key": MASTER_KEY},
        "models": [{"name": "m", "targets": [{"provider": "mock"}]}],
    }
    for _ in range(2):
        async with run_gateway(config, tmp_path) as gw:
            _status, log = await call(gw, "GET", "/admin/audit", MASTER_KEY, action="config.changed")
    assert len(log["data"]) == 1
    config["models"][0]["name"] = "m2"
    async with run_gateway(config, tmp_path) as gw:
        _status, log = await call(gw, "GET", "/admin/audit", MASTER_KEY, action="config.changed")
    assert (
        len(log["data"]) == 2 and log["data"][0]["details"]["previous"] == log["data"][1]["details"]["digest"]
    )
