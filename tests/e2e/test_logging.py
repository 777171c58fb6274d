"""Where the server logs and how loud: ``server.log_level`` through the real ``llmrelay serve``."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.e2e.gateway import Gateway, run_gateway


async def _one_request_then_stop(config: dict[str, object], tmp_path: Path) -> Gateway:
    async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s:
        body = {"model": "mock", "messages": [{"role": "user", "content": "Hello"}]}
        async with s.post(gw.url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200
    return gw  # stopped: everything it logged is in the file


@pytest.mark.parametrize(("level", "access_lines"), [(None, 1), ("info", 1), ("warning", 0)])
async def test_log_level_decides_whether_the_access_log_is_written(
    tmp_path: Path, level: str | None, access_lines: int
) -> None:
    server = {} if level is None else {"log_level": level}
    config = {"server": server, "models": [{"name": "mock", "targets": [{"provider": "mock"}]}]}
    gw = await _one_request_then_stop(config, tmp_path)
    lines = gw.access_lines()
    assert len(lines) == access_lines
    if lines:
        assert lines[0]["route"] and lines[0]["status"] == 200
