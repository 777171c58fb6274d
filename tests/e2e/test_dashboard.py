"""The dashboard in a real browser (Debian's chromium driven by Playwright) against the real server.

Log in with the master key; the overview shows charts with data from real calls through the server;
a key created on the keys page works against /v1/chat/completions; the request log finds a call
by id. Also the security properties: CSP and friends on every page, the session cookie HttpOnly and
SameSite=Strict, a state change without the CSRF token refused. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.e2e.gateway import Gateway, run_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

MASTER = "sk-master-dashboard-0123456789"
APP = "sk-relay-dashboard-app-0123456789abcdef"
BATCH = "sk-relay-dashboard-batch-0123456789abcd"
FREE_RPM = 5
PRO_RPM = 60  # refills one a second
BURST = 10
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    config = {
        "server": {"master_key": MASTER},
        "keys": [
            {"key": APP, "name": "app", "tier": "pro", "metadata": {"team": "search", "feature": "chat"}},
            {"key": BATCH, "name": "batch", "tier": "free", "metadata": {"team": "ops", "feature": "digest"}},
        ],
        "tiers": {"pro": {"rpm": PRO_RPM, "tpm": 200_000}, "free": {"rpm": FREE_RPM}},
        "telemetry": {"tag_labels": ["feature"]},
        "models": [
            {"name": "demo", "targets": [{"provider": "mock", "price": {"input": 1, "output": 2}}]},
            {
                "name": "flaky",
                "retry": {"max_retries": 0},
                "targets": [{"provider": "mock", "name": "wobbly", "options": {"fail_rate": 0.5, "seed": 7}}],
            },
        ],
    }
    async with run_gateway(config, tmp_path_factory.mktemp("ui")) as gw:
        yield gw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def chat(url: str, key: str, model: str = "demo", request_id: str | None = None) -> int:
    headers = {"authorization": f"Bearer {key}", **({"x-request-id": request_id} if request_id else {})}
    body = {"model": model, "messages": [{"role": "user", "content": "hello dashboard"}]}
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + "/v1/chat/completions", json=body, headers=headers) as r,
    ):
        await r.read()
        return r.status


async def test_login_overview_keys_and_request_log(gateway: Gateway, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for i in range(12):
        await chat(gateway.url, MASTER, "flaky" if i % 3 == 0 else "demo", request_id=f"ui-call-{i}")
    # the free tier's key: a burst of FREE_RPM, then refusals
    batch = [await chat(gateway.url, BATCH) for _ in range(FREE_RPM + 3)]
    assert batch.count(429) >= 3
    page = await browser.new_page(viewport={"width": 1280, "height": 1100})
    response = await page.goto(gateway.url + "/ui")
    assert response is not None and page.url.endswith("/ui/login")
    await page.fill("input[name=master_key]", "not-the-key")
    await page.click("button")
    assert "not the master key" in await page.content()
    await page.fill("input[name=master_key]", MASTER)
    await page.click("button")
    await page.wait_for_url(gateway.url + "/ui")

    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["llmrelay_ui"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/ui"

    # The history samples every few seconds: reload (bounded) until a chart has a line.
    for _ in range(40):
        await chat(gateway.url, MASTER)
        await chat(gateway.url, APP)
        response = await page.reload()
        if await page.locator("svg.chart polyline").count() >= 3:
            break
        await asyncio.sleep(0.5)  # polling with a deadline (20 s)
    assert await page.locator("svg.chart").count() == 5
    assert await page.locator("svg.chart polyline").count() >= 3
    assert response is not None
    headers = response.headers
    assert "script-src" not in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    text = await page.inner_text("main")
    assert "demo:mock/default" in text and "closed" in text  # per-target health
    assert "UpstreamError" in text  # errors by type, from the flaky alias
    await page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)

    # Usage: tokens and spend over time by key, team, model and the configured tag, and the
    # ledger's totals by the model that answered.
    await page.click("text=Usage")
    await page.wait_for_url(gateway.url + "/ui/usage")
    for _ in range(40):
        legends = await page.locator("svg.chart text").all_text_contents()
        if any(t.startswith("static_app") for t in legends) and await page.locator("#ledger").count():
            break
        await chat(gateway.url, APP)
        await asyncio.sleep(0.5)  # polling with a deadline (20 s): the history samples every 5 s
        await page.reload()
    titles = [await c.get_attribute("aria-label") for c in await page.locator("svg.chart").all()]
    for by in ("key", "team", "model (alias)", "tag feature"):
        assert f"Tokens per second by {by}" in titles and f"Spend per sample by {by}" in titles
    legends = " ".join(await page.locator("svg.chart text").all_text_contents())
    for name in ("static_app", "static_batch", "search", "ops", "demo", "chat", "digest"):
        assert name in legends, name
    assert await page.locator("svg.chart polyline").count() >= 8
    ledger = await page.inner_text("#ledger")
    assert "mock\t" in ledger  # the mock's model name, as the ledger recorded it
    await page.screenshot(path=str(ARTIFACTS / "dashboard-usage.png"), full_page=True)

    # Limits: each key's headroom now, from the limiter's decisions, and the free key's refusals.
    burst_started = time.monotonic()
    for _ in range(BURST):
        await chat(gateway.url, APP)
    await page.click("text=Limits")
    await page.wait_for_url(gateway.url + "/ui/limits")
    refilled = time.monotonic() - burst_started + 1
    rows = {
        tuple(cells[:3]): cells
        for cells in [
            (await row.inner_text()).split("\t") for row in await page.locator("#headroom tr").all()
        ][1:]
    }
    app_requests = rows[("static_app", "pro", "requests")]
    assert app_requests[3] == str(PRO_RPM) and 0 <= int(app_requests[4]) <= PRO_RPM - BURST + refilled
    assert ("static_app", "pro", "tokens") in rows
    free = rows[("static_batch", "free", "requests")]
    assert free[3] == str(FREE_RPM) and int(free[4]) < FREE_RPM and int(free[7]) >= 3
    assert await page.locator("#headroom svg.bar").count() == len(rows)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-limits.png"), full_page=True)

    await page.click("text=Keys")
    await page.fill("input[name=name]", "browser-made")
    await page.fill("input[name=team]", "web")
    await page.click("form[action='/ui/keys'] button")
    secret = (await page.inner_text("#new-secret")).strip()
    assert secret.startswith("sk-")
    assert "browser-made" in await page.inner_text("table")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-keys.png"), full_page=True)
    assert await chat(gateway.url, secret, request_id="made-in-browser") == 200
    await page.goto(gateway.url + "/ui/keys")
    assert secret not in await page.content()  # shown once, never again
    assert await page.locator("table tr").count() == 2  # the header and the one key

    await page.click("text=Requests")
    await page.fill("input[name=request_id]", "made-in-browser")
    await page.click("form[action='/ui/requests'] button")
    rows = await page.locator("table tr").all_inner_texts()
    assert len(rows) == 2 and "made-in-browser" in rows[1] and "200" in rows[1]
    await page.screenshot(path=str(ARTIFACTS / "dashboard-requests.png"), full_page=True)

    # A state change without the form's CSRF token is refused, even with the session cookie.
    forged = await page.request.post(gateway.url + "/ui/keys", form={"name": "forged"})
    assert forged.status == 403
    await page.goto(gateway.url + "/ui/keys")
    assert "forged" not in await page.inner_text("table")

    # Revoking it from the page stops it working.
    await page.click("form[action$='/revoke'] button")
    await page.wait_for_url(gateway.url + "/ui/keys")
    assert "revoked" in await page.inner_text("table")
    assert await chat(gateway.url, secret) == 401

    await page.click("text=Log out")
    await page.wait_for_url(gateway.url + "/ui/login")
    assert (await page.goto(gateway.url + "/ui/keys")) is not None and page.url.endswith("/ui/login")
    await page.close()


async def test_ui_is_off_without_a_master_key(tmp_path: Path) -> None:
    config: dict[str, Any] = {"models": [{"name": "demo", "targets": [{"provider": "mock"}]}]}
    async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s, s.get(gw.url + "/ui") as r:
        assert r.status == 404
