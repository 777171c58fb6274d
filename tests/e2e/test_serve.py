"""``llmrelay serve`` as a user runs it: zero-config start, the printed hint, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.gateway import run_gateway


async def test_zero_config_answers_without_a_key(tmp_path: Path) -> None:
    config = {"models": [{"name": "mock", "targets": [{"provider": "mock"}]}]}
    async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s:
        body = {"model": "mock", "messages": [{"role": "user", "content": "Hello"}]}
        async with s.post(gw.url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200
            assert (await r.json())["choices"][0]["message"]["content"] == "You said: Hello"
    assert "curl http://127.0.0.1:" in gw.log()
    assert "open: no API key needed" in gw.log()


async def test_sigterm_lets_an_open_stream_finish(tmp_path: Path) -> None:
    options = {"text": "one two three four five six", "chunk_delay": 0.1}
    config = {"models": [{"name": "slow", "targets": [{"provider": "mock", "options": options}]}]}
    async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s:
        body = {"model": "slow", "messages": [{"role": "user", "content": "x"}], "stream": True}
        async with s.post(gw.url + "/v1/chat/completions", json=body) as r:
            first = await r.content.readline()
            assert first.startswith(b"data: ")
            gw.process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(r.content.read(), timeout=10)
        text = "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            for line in (first + rest).split(b"\n")
            if line.startswith(b"data: {")
        )
        assert text == "one two three four five six"
        assert rest.rstrip().endswith(b"data: [DONE]")
        # uvicorn re-raises the captured SIGTERM once it has drained, as a signal-ended process should
        assert await asyncio.wait_for(gw.process.wait(), timeout=10) in (0, -signal.SIGTERM)


@pytest.mark.parametrize("workers", [2])
async def test_several_workers_serve(tmp_path: Path, workers: int) -> None:
    config = {"models": [{"name": "mock", "targets": [{"provider": "mock"}]}]}
    async with (
        run_gateway(config, tmp_path, extra_args=("--workers", str(workers))) as gw,
        aiohttp.ClientSession() as s,
    ):
        body = {"model": "mock", "messages": [{"role": "user", "content": "w"}]}
        for _ in range(4):
            async with s.post(gw.url + "/v1/chat/completions", json=body) as r:
                assert r.status == 200
