"""PostgreSQL unreachable while the gateway runs (a TCP proxy in between is cut, the shared server
is never stopped): requests are still served, the ledger buffers their rows and writes each one
exactly once when the database is back; a clean shutdown writes what is still buffered."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.e2e.gateway import run_gateway
from tests.fakes.tcp_proxy import TcpProxy
from tests.pg import SERVER, pg_schema

KEY = "sk-relay-outage-0123456789abcdef"


def config(url: str, *, flush_interval: float) -> dict[str, Any]:
    return {
        "keys": [{"key": KEY, "metadata": {"team": "t"}}],  # static: no store lookup to authenticate
        "state": {"url": url},
        "ledger": {"flush_interval": flush_interval},
        "models": [{"name": "m", "targets": [{"provider": "mock", "price": {"input": 1, "output": 1}}]}],
    }


async def ask(session: aiohttp.ClientSession, url: str, request_id: str) -> int:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {KEY}", "x-request-id": request_id}
    async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
        return r.status


async def rows(schema: str, prefix: str) -> list[str]:
    conn = await asyncpg.connect(SERVER)
    try:
        found = await conn.fetch(
            f'SELECT request_id FROM "{schema}".ledger WHERE request_id LIKE $1 ORDER BY request_id',
            prefix + "%",
        )
        return [row[0] for row in found]
    finally:
        await conn.close()


async def test_rows_buffered_through_an_outage_are_written_once_it_ends(tmp_path: Path) -> None:
    proxy = TcpProxy(5432)
    await proxy.start()
    async with pg_schema("outage") as direct:
        schema = direct.rsplit("=", 1)[1]
        url = direct.replace(":5432/", f":{proxy.port}/")
        async with (
            run_gateway(config(url, flush_interval=0.05), tmp_path) as gw,
            aiohttp.ClientSession() as s,
        ):
            assert await ask(s, gw.url, "before-0") == 200
            await proxy.cut()
            statuses = await asyncio.gather(*(ask(s, gw.url, f"during-{i:02}") for i in range(20)))
            assert statuses == [200] * 20  # served while the database is unreachable
            assert await rows(schema, "during-") == []
            for _ in range(200):  # polling the log while the database stays away, bounded to 20 s
                if "buffering and retrying" in gw.log():
                    break
                await asyncio.sleep(0.1)
            assert "buffering and retrying" in gw.log()  # the outage is reported, not waited out silently
            await proxy.start()
            expected = [f"during-{i:02}" for i in range(20)]
            for _ in range(200):  # polling the database, bounded to 20 s
                if await rows(schema, "during-") == expected:
                    break
                await asyncio.sleep(0.1)
            assert await rows(schema, "during-") == expected
        await proxy.cut()


async def test_a_clean_shutdown_writes_every_buffered_row(tmp_path: Path) -> None:
    async with pg_schema("drain") as url:
        schema = url.rsplit("=", 1)[1]
        # A flush interval longer than the test: only the shutdown drain can write these rows.
        async with run_gateway(config(url, flush_interval=300), tmp_path) as gw, aiohttp.ClientSession() as s:
            statuses = await asyncio.gather(*(ask(s, gw.url, f"drain-{i:03}") for i in range(50)))
            assert statuses == [200] * 50
            assert await rows(schema, "drain-") == []
            gw.process.send_signal(signal.SIGTERM)
            # uvicorn re-raises the SIGTERM once drained: -15 is a clean exit
            assert await asyncio.wait_for(gw.process.wait(), 15) in (0, -signal.SIGTERM)
        assert await rows(schema, "drain-") == [f"drain-{i:03}" for i in range(50)]
