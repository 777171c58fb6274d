"""``llmrelay serve`` as a user runs it: start-up, the printed hint, bad ports, header limits, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.gateway import LLMRELAY, run_gateway


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


MOCK = {"models": [{"name": "mock", "targets": [{"provider": "mock"}]}]}


async def send_with_big_header(url: str, size: int, path: str = "/healthz") -> bytes:
    """``GET path`` with one header of ``size`` bytes, streamed in 64 KiB pieces; the raw answer.

    Reads while writing, and stops writing as soon as the server has answered and closed its side,
    as a client would (the server may refuse long before the header ends).
    """
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\nx-big: ".encode())
    answer = asyncio.create_task(reader.read())  # everything up to the server's EOF
    piece = b"a" * 65536
    try:
        sent = 0
        while sent < size and not answer.done():
            writer.write(piece[: size - sent])
            sent += len(piece)
            await writer.drain()
        if not answer.done():
            writer.write(b"\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass  # the server may stop reading once it has answered
    try:
        return await asyncio.wait_for(answer, timeout=20)
    finally:
        writer.close()


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_huge_header_is_431_and_the_server_keeps_serving(tmp_path: Path, workers: int) -> None:
    extra = ("--workers", str(workers))
    async with run_gateway(MOCK, tmp_path, extra_args=extra) as gw, aiohttp.ClientSession() as s:
        for path in ("/healthz", "/v1/messages"):
            raw = await send_with_big_header(gw.url, 16 * 1024 * 1024, path)
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 431 "), raw[:200]
            error = json.loads(body)
            assert "server.max_header_bytes" in error["error"]["message"]
            assert ("type" in error) == (path == "/v1/messages")  # Anthropic's shape there
        async with s.get(gw.url + "/healthz") as r:
            assert r.status == 200
    assert '"status":431' in gw.log()


async def send_whole_head(url: str, size: int) -> bytes:
    """``GET /healthz`` with a ``size``-byte header, written at once: one read for the server."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\nx-big: " + b"a" * size + b"\r\n\r\n"
    writer.write(head)
    try:
        return await asyncio.wait_for(reader.read(), timeout=20)
    finally:
        writer.close()


@pytest.mark.parametrize("send", [send_with_big_header, send_whole_head])
async def test_the_header_cap_is_configurable(tmp_path: Path, send: Any) -> None:
    config = {**MOCK, "server": {"max_header_bytes": 4096}}
    async with run_gateway(config, tmp_path) as gw:
        assert (await send(gw.url, 3000)).startswith(b"HTTP/1.1 200 ")
        assert (await send(gw.url, 5000)).startswith(b"HTTP/1.1 431 ")
        assert (await send(gw.url, 200_000)).startswith(b"HTTP/1.1 431 ")
    assert "Traceback" not in gw.log() and "WARNING" not in gw.log()


async def test_headers_up_to_the_default_cap_are_accepted(tmp_path: Path) -> None:
    async with run_gateway(MOCK, tmp_path) as gw:
        assert (await send_with_big_header(gw.url, 30 * 1024)).startswith(b"HTTP/1.1 200 ")
        assert (await send_with_big_header(gw.url, 33 * 1024)).startswith(b"HTTP/1.1 431 ")


async def run_serve(tmp_path: Path, *args: str, config: dict[str, object] = MOCK) -> tuple[int, str]:
    """``llmrelay serve`` expected to exit on its own: its exit code and everything it printed."""
    path = tmp_path / "llmrelay.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "LLMRELAY_HOME": str(tmp_path / "home")}
    process = await asyncio.create_subprocess_exec(
        str(LLMRELAY),
        "serve",
        "-c",
        str(path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536"])
async def test_a_port_out_of_range_is_one_clear_error(tmp_path: Path, port: str) -> None:
    code, out = await run_serve(tmp_path, "--port", port)
    assert code != 0
    assert "65535" in out and "Traceback" not in out and "listening" not in out


async def test_a_configured_port_out_of_range_is_one_clear_error(tmp_path: Path) -> None:
    code, out = await run_serve(tmp_path, config={**MOCK, "server": {"port": 99999}})
    assert code != 0
    assert out.strip().splitlines() == [out.strip()]  # one line
    assert "$.server.port" in out and "65535" in out and "Traceback" not in out


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_port_in_use_is_one_clear_error_and_no_banner(tmp_path: Path, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out = await run_serve(tmp_path, "--port", port, "--workers", workers)
    assert code != 0
    assert out.strip() == f"error: cannot listen on 127.0.0.1:{port}: address already in use"


async def test_the_banner_of_a_keyed_gateway_shows_how_to_send_the_key(tmp_path: Path) -> None:
    config = {**MOCK, "server": {"master_key": "sk-master-banner-test-0123"}}
    async with run_gateway(config, tmp_path) as gw:
        log = gw.log()
    port = gw.url.rsplit(":", 1)[1]
    assert f"llmrelay listening on http://127.0.0.1:{port}" in log
    assert "-H 'Authorization: Bearer <key>'" in log
    assert "sk-master-banner-test-0123" not in log


async def test_large_bodies_on_a_kept_alive_connection_are_not_taken_for_headers(tmp_path: Path) -> None:
    # Reads that carry the end of a body and the start of the next request must not count as head.
    config = {**MOCK, "server": {"max_body_bytes": 4 * 1024 * 1024}}
    text = "word " * 200_000  # a 1 MB body, read by the server in pieces much larger than the head cap
    body = {"model": "mock", "messages": [{"role": "user", "content": text}]}
    async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s:
        for _ in range(3):  # one connection, reused
            async with s.post(gw.url + "/v1/chat/completions", json=body) as r:
                assert r.status == 200
                assert (await r.json())["choices"][0]["message"]["content"] == "You said: " + text
