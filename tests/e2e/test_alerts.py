"""Alerts through the real server with two workers: a scripted error burst fires once and resolves
once, delivered to a loopback webhook receiver that verifies every signature, and to a
Slack-shaped one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from llmrelay.alerts.webhooks import verify
from tests.e2e.gateway import free_port, run_gateway
from tests.fakes.server import serve

SECRET = "whsec-loopback-0123456789"
WINDOW = 1.0


class Receiver:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.slack: list[dict[str, Any]] = []
        self.bad_signatures = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/slack", self._slack)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers.get("x-llmrelay-timestamp", "")
        if not verify(SECRET, stamp, body, request.headers.get("x-llmrelay-signature", "")):
            self.bad_signatures += 1
            return web.Response(status=401)
        self.events.append(json.loads(body))
        return web.Response(status=204)

    async def _slack(self, request: web.Request) -> web.Response:
        self.slack.append(await request.json())
        return web.Response(text="ok")


async def until(condition: Any, *, seconds: float, also: Any = None) -> None:
    """Poll ``condition`` (bounded), running ``also`` (a call to send) between polls."""
    for _ in range(int(seconds / 0.1)):
        if condition():
            return
        if also is not None:
            await also()
        await asyncio.sleep(0.1)  # polling with a deadline
    raise AssertionError("condition not met in time")


@pytest.mark.asyncio
async def test_an_error_burst_fires_once_and_resolves_once_across_two_workers(tmp_path: Path) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as hooks:
        dead = f"http://127.0.0.1:{free_port()}/v1"
        config = {
            "models": [
                {
                    "name": "down",
                    "targets": [{"provider": "openai", "model": "m", "base_url": dead}],
                    "retry": {"max_retries": 0},
                    "circuit_breaker": {"failures": 100000, "min_calls": 100000},
                },
                {"name": "ok", "targets": [{"provider": "mock"}]},
            ],
            "alerts": {
                "rules": [{"name": "errors", "kind": "error_rate", "threshold": 0.5, "window": WINDOW}],
                "webhooks": [
                    {"url": hooks + "/hook", "secret": SECRET},
                    {"url": hooks + "/slack", "format": "slack"},
                ],
            },
        }
        async with (
            run_gateway(config, tmp_path, extra_args=("--workers", "2")) as gw,
            aiohttp.ClientSession() as session,
        ):

            async def send(model: str) -> None:
                body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
                for _ in range(4):
                    async with session.post(gw.url + "/v1/chat/completions", json=body) as resp:
                        await resp.read()

            async def failing() -> None:
                await send("down")

            async def healthy() -> None:
                await send("ok")

            await until(lambda: receiver.events, seconds=15, also=failing)
            await until(lambda: len(receiver.events) >= 2, seconds=15, also=healthy)
            # two more windows of healthy traffic: nothing else may arrive (no duplicate from the
            # other worker, no second resolution)
            for _ in range(int(3 * WINDOW / 0.1)):
                await healthy()
                await asyncio.sleep(0.1)
    assert receiver.bad_signatures == 0
    assert [e["status"] for e in receiver.events] == ["firing", "resolved"]
    firing, resolved = receiver.events
    assert firing["rule"] == "errors" and firing["value"] > 0.5 and firing["threshold"] == 0.5
    assert resolved["value"] <= 0.5
    assert [m["text"].split("]")[0] for m in receiver.slack] == ["[FIRING", "[RESOLVED"]


@pytest.mark.asyncio
async def test_rate_limit_saturation_and_a_budget_crossing_fire_once_through_the_server(
    tmp_path: Path,
) -> None:
    """A key of a 5-a-minute tier sends 10 calls: half refused, the saturation rule fires; then
    another key's calls go through and it resolves. That key's soft budget is tiny: its first
    answer crosses 50%, one firing for that budget however many windows pass."""
    receiver = Receiver()
    limited, other = "sk-relay-alerts-limited-0123456789", "sk-relay-alerts-other-0123456789ab"
    async with serve(receiver.app()) as hooks:
        config = {
            "keys": [{"key": limited, "name": "limited", "tier": "free"}, {"key": other, "name": "other"}],
            "tiers": {"free": {"rpm": 5}},
            "budgets": [{"scope": "key", "match": "static_other", "limit_usd": 1e-9, "mode": "soft"}],
            "models": [{"name": "ok", "targets": [{"provider": "mock", "price": {"input": 1, "output": 1}}]}],
            "alerts": {
                "rules": [
                    {"name": "limited", "kind": "rate_limit_saturation", "threshold": 0.2, "window": WINDOW},
                    {"name": "budget_half", "kind": "budget_used", "threshold": 0.5, "window": WINDOW},
                ],
                "webhooks": [{"url": hooks + "/hook", "secret": SECRET}],
            },
        }
        async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as session:

            async def send(key: str, n: int) -> list[int]:
                body = {"model": "ok", "messages": [{"role": "user", "content": "hi"}]}
                statuses = []
                for _ in range(n):
                    headers = {"authorization": f"Bearer {key}"}
                    async with session.post(gw.url + "/v1/chat/completions", json=body, headers=headers) as r:
                        await r.read()
                        statuses.append(r.status)
                return statuses

            assert (await send(limited, 10)).count(429) >= 5

            def fired(rule: str, status: str) -> bool:
                return any(e["rule"] == rule and e["status"] == status for e in receiver.events)

            async def healthy() -> None:
                await send(other, 2)

            await until(lambda: fired("limited", "firing"), seconds=15)
            await until(lambda: fired("limited", "resolved"), seconds=15, also=healthy)
            await until(lambda: fired("budget_half", "firing"), seconds=15, also=healthy)
            for _ in range(int(3 * WINDOW / 0.1)):  # three more windows: nothing new may arrive
                await healthy()
                await asyncio.sleep(0.1)
    assert receiver.bad_signatures == 0
    assert [e["status"] for e in receiver.events if e["rule"] == "limited"] == ["firing", "resolved"]
    limited_firing = next(e for e in receiver.events if e["rule"] == "limited")
    assert limited_firing["value"] >= 0.5
    budget = [e for e in receiver.events if e["rule"] == "budget_half"]
    assert [e["status"] for e in budget] == ["firing"]
    assert budget[0]["instance"] == "key=static_other/monthly|static_other" and budget[0]["value"] >= 1
