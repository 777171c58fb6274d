"""A provider key rotates while requests run through the real server: none of them fails.

The key lives in a file (as a Docker or Kubernetes secret does). The fake upstream accepts the old
and the new key during the rotation, as providers do while both are valid; once the gateway sends
the new one and every request sent with the old one has finished, the old key is revoked, so a
request still sent with it would fail.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.gateway import run_gateway
from tests.fakes.openai_upstream import OpenAIUpstream
from tests.fakes.server import serve

OLD, NEW = "sk-rotation-old-0000000001", "sk-rotation-new-0000000002"
WORKERS = 8


def sent_with(upstream: OpenAIUpstream, key: str) -> int:
    return sum(r.headers.get("authorization") == f"Bearer {key}" for r in upstream.requests)


async def test_rotation_under_load_fails_no_request(tmp_path: Path) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text(OLD + "\n")
    upstream = OpenAIUpstream(accepted_keys={OLD})
    statuses: list[int] = []
    finished = [0] * WORKERS
    stop = asyncio.Event()

    async def worker(n: int, url: str, session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            body = {
                "model": "fast",
                "messages": [{"role": "user", "content": f"hi {n}"}],
                "stream": n % 2 == 1,
            }
            async with session.post(url + "/v1/chat/completions", json=body) as r:
                text = await r.text()
                # A failure after the commit point of a stream would be an error event in a 200.
                statuses.append(r.status if '"error"' not in text else 599)
            finished[n] += 1

    async def until(condition: object, deadline: float = 20.0) -> None:
        assert callable(condition)
        end = asyncio.get_running_loop().time() + deadline
        while not condition():
            assert asyncio.get_running_loop().time() < end, "condition not met in time"
            await asyncio.sleep(0.01)

    async with serve(upstream.app()) as upstream_url:
        target = {
            "provider": "openai",
            "model": "m",
            "base_url": upstream_url + "/v1",
            "api_key": {"file": str(key_file), "refresh": 0.05},
        }
        config = {"models": [{"name": "fast", "targets": [target]}]}
        async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(worker(n, gw.url, session)) for n in range(WORKERS)]
            try:
                await until(lambda: len(statuses) >= 50)
                upstream.accepted_keys = {OLD, NEW}
                tmp = key_file.with_suffix(".tmp")
                tmp.write_text(NEW + "\n")
                os.replace(tmp, key_file)  # atomic, as Kubernetes swaps its secret volumes
                await until(lambda: sent_with(upstream, NEW) > 0)
                # Requests that took the old key are in flight: let each worker finish one more.
                marks = list(finished)
                await until(lambda: all(f >= m + 2 for f, m in zip(finished, marks, strict=True)))
                upstream.accepted_keys = {NEW}  # revoked: a request with it now would fail
                after = len(upstream.requests)
                await until(lambda: len(upstream.requests) >= after + 100)
            finally:
                stop.set()
                await asyncio.gather(*tasks)
        log = gw.log()
    assert len(statuses) >= 150 and set(statuses) == {200}
    assert sent_with(upstream, OLD) >= 50 and sent_with(upstream, NEW) >= 100
    assert all(r.headers.get("authorization") == f"Bearer {NEW}" for r in upstream.requests[after:])
    assert "changed: new requests use the new key" in log
    assert OLD not in log and NEW not in log


async def test_a_key_that_cannot_be_read_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    leak = "sk-printed-by-a-failing-cli-0000000003"
    failing = [sys.executable, "-c", f"import sys; print('bad token {leak}', file=sys.stderr); sys.exit(2)"]
    config = {
        "models": [
            {"name": "fast", "targets": [{"provider": "openai", "model": "m", "api_key": {"exec": failing}}]}
        ]
    }
    with pytest.raises(RuntimeError, match="gateway exited early") as info:
        async with run_gateway(config, tmp_path):
            pass
    log = str(info.value)
    program = os.path.basename(sys.executable)
    assert f"startup failed: the key command `{program}` exited with status 2" in log
    assert leak not in log and "Traceback" not in log
