"""The usage ledger through the real server on real PostgreSQL: every request's row, tags from the
header and ``metadata``, ``GET /admin/usage`` and ``llmrelay usage`` totals equal to the sum of the
per-request costs the server reported, and keys and ledger surviving a restart."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.gateway import Gateway, run_gateway
from tests.pg import pg_schema

MASTER = "sk-master-usage-0123456789"
ADMIN = {"authorization": f"Bearer {MASTER}"}
PRICE = {"input": 2.0, "output": 8.0}
HELLO = [{"role": "user", "content": "Tell me about ledgers, please."}]


def config(url: str) -> dict[str, Any]:
    return {
        "server": {"master_key": MASTER},
        "state": {"url": url},
        "ledger": {"flush_interval": 0.05},
        "models": [{"name": "m", "targets": [{"provider": "mock", "price": PRICE}]}],
    }


async def new_key(session: aiohttp.ClientSession, gw: Gateway, team: str) -> str:
    async with session.post(gw.url + "/admin/keys", json={"metadata": {"team": team}}, headers=ADMIN) as r:
        assert r.status == 200
        return str((await r.json())["key"])


async def call(
    session: aiohttp.ClientSession,
    gw: Gateway,
    key: str,
    *,
    stream: bool = False,
    tags: str | None = None,
    **body: Any,
) -> tuple[int, float]:
    headers = {"authorization": f"Bearer {key}"}
    if tags is not None:
        headers["x-llmrelay-tags"] = tags
    payload = {"model": "m", "messages": HELLO, "stream": stream, **body}
    async with session.post(gw.url + "/v1/chat/completions", json=payload, headers=headers) as r:
        text = await r.text()
        if r.status != 200:
            return r.status, 0.0
        if not stream:
            return 200, float(r.headers["x-llmrelay-cost"])
    comment = next(line for line in text.split("\n") if line.startswith(": x-llmrelay-cost="))
    return 200, float(comment.split("=", 1)[1])


async def usage(session: aiohttp.ClientSession, gw: Gateway, **params: str) -> Any:
    async with session.get(gw.url + "/admin/usage", params=params, headers=ADMIN) as r:
        assert r.status == 200, await r.text()
        return await r.json() if params.get("format", "json") == "json" else await r.text()


async def test_report_totals_equal_the_sum_of_request_costs_and_survive_a_restart(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with pg_schema("usage") as url, aiohttp.ClientSession() as s:
        costs: dict[str, float] = {"search": 0.0, "ads": 0.0}
        async with run_gateway(config(url), tmp_path / "a") as gw:
            keys = {team: await new_key(s, gw, team) for team in costs}
            calls = [
                c
                for _ in range(5)
                for c in (
                    call(s, gw, keys["search"], tags="feature=ask"),
                    call(s, gw, keys["search"], stream=True, tags="feature=ask,customer=acme"),
                    call(s, gw, keys["ads"], metadata={"feature": "bid"}),
                    call(s, gw, keys["ads"], stream=True, max_tokens=3),
                )
            ]
            answers = await asyncio.gather(*calls)
            for (status, cost), team in zip(answers, ["search", "search", "ads", "ads"] * 5, strict=True):
                assert status == 200 and cost > 0
                costs[team] += cost
            bad, _ = await call(s, gw, keys["ads"], tags="not a pair")
            assert bad == 400
            report = await usage(s, gw, group_by="team")
            assert {row["group"]: row["requests"] for row in report["data"]} == {"search": 10, "ads": 11}
            for row in report["data"]:
                assert row["cost_usd"] == pytest.approx(costs[row["group"]], abs=1e-9)
            assert report["total"]["cost_usd"] == pytest.approx(sum(costs.values()), abs=1e-9)
            assert report["total"]["errors"] == 1
            by_feature = await usage(s, gw, group_by="tag:feature")
            assert {row["group"]: row["requests"] for row in by_feature["data"]} == {
                "ask": 10,
                "bid": 5,
                None: 6,
            }
            customer = await usage(s, gw, group_by="tag:customer", format="csv")
            parsed = list(csv.DictReader(io.StringIO(customer)))
            assert {row["tag:customer"]: row["requests"] for row in parsed[:-1]} == {"acme": "5", "": "16"}
            assert parsed[-1]["tag:customer"] == "total" and parsed[-1]["requests"] == "21"
        # A second server on the same database: the keys still work, the ledger still holds the rows.
        async with run_gateway(config(url), tmp_path / "b") as gw:
            status, cost = await call(s, gw, keys["search"])
            assert status == 200
            report = await usage(s, gw, group_by="team")
            spent = {row["group"]: row["cost_usd"] for row in report["data"]}
            assert spent["search"] == pytest.approx(costs["search"] + cost, abs=1e-9)
            assert spent["ads"] == pytest.approx(costs["ads"], abs=1e-9)
        cli = Path(sys.executable).with_name("llmrelay")
        (tmp_path / "c.json").write_text(json.dumps(config(url)))
        process = await asyncio.create_subprocess_exec(
            cli,
            "usage",
            "-c",
            tmp_path / "c.json",
            "--group-by",
            "team",
            "--format",
            "json",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        assert process.returncode == 0
        assert json.loads(out)["total"]["requests"] == 22
        table = await asyncio.create_subprocess_exec(
            cli, "usage", "-c", tmp_path / "c.json", "-g", "team", stdout=asyncio.subprocess.PIPE
        )
        text = (await table.communicate())[0].decode()
        assert text.splitlines()[0].split()[:3] == ["team", "requests", "errors"]
        assert text.splitlines()[-1].split()[:2] == ["total", "22"]


async def test_bad_queries_are_400_and_callers_need_the_master_key(tmp_path: Path) -> None:
    async with (
        run_gateway(config(f"sqlite:///{tmp_path / 's.db'}"), tmp_path) as gw,
        aiohttp.ClientSession() as s,
    ):
        for params, param in [
            ({"group_by": "colour"}, "group_by"),
            ({"group_by": "tag:a b"}, "group_by"),
            ({"from": "yesterday"}, "from"),
            ({"format": "xml"}, "format"),
        ]:
            async with s.get(gw.url + "/admin/usage", params=params, headers=ADMIN) as r:
                assert r.status == 400
                assert (await r.json())["error"]["param"] == param
        async with s.get(gw.url + "/admin/usage", headers={"authorization": "Bearer nope"}) as r:
            assert r.status == 401
        async with s.get(
            gw.url + "/admin/usage", params={"from": "2020-01-01", "to": "2020-01-02"}, headers=ADMIN
        ) as r:
            assert (await r.json())["total"]["requests"] == 0


async def test_the_usage_command_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(config(f"sqlite:///{tmp_path / 's.db'}")))
    cli = Path(sys.executable).with_name("llmrelay")
    for args, message in [
        (("--group-by", "colour"), "error: group_by must be one of"),
        (("--from", "last week"), "error: `from` must be epoch seconds or an ISO date"),
    ]:
        process = await asyncio.create_subprocess_exec(
            cli, "usage", "-c", tmp_path / "c.json", *args, stderr=asyncio.subprocess.PIPE
        )
        _, err = await process.communicate()
        assert process.returncode == 1
        assert err.decode().startswith(message) and err.decode().count("\n") == 1
