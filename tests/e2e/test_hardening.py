"""Transport hardening through the real server: slow bodies, TLS served directly, CORS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.gateway import LLMRELAY, free_port, run_gateway

CHAT = "/v1/chat/completions"
MOCK = {"models": [{"name": "mock", "targets": [{"provider": "mock"}]}]}
HELLO = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_body_that_trickles_in_is_408_and_the_server_keeps_serving(tmp_path: Path) -> None:
    config = {**MOCK, "server": {"body_timeout": 0.5}}
    async with run_gateway(config, tmp_path) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 1000\r\n\r\n{"model"'
        )
        await writer.drain()  # ... and nothing more: the rest of the body never comes
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.startswith(b"HTTP/1.1 408")
        writer.close()
        async with aiohttp.ClientSession() as s, s.post(gw.url + "/v1/chat/completions", json=HELLO) as r:
            assert r.status == 200
    line = next(line for line in gw.access_lines() if line["status"] == 408)
    assert line["error"] == "request_timeout"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_served_directly_with_a_configured_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    config = {**MOCK, "server": {"tls": {"cert": str(cert), "key": str(key)}}}
    trust = ssl.create_default_context(cafile=str(cert))
    async with run_gateway(config, tmp_path) as gw:
        assert gw.url.startswith("https://")
        async with aiohttp.ClientSession() as s:
            async with s.post(gw.url + "/v1/chat/completions", json=HELLO, ssl=trust) as r:
                assert r.status == 200 and (await r.json())["choices"][0]["message"]["content"]
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with s.post(gw.url + "/v1/chat/completions", json=HELLO):  # default trust store
                    pass
    assert "https://127.0.0.1:" in gw.log()


async def test_a_certificate_that_cannot_be_loaded_is_one_line_at_start(tmp_path: Path) -> None:
    tls = {"cert": str(tmp_path / "missing.pem"), "key": str(tmp_path / "missing.key")}
    (tmp_path / "c.json").write_text(json.dumps({**MOCK, "server": {"tls": tls}}))
    process = await asyncio.create_subprocess_exec(
        str(LLMRELAY), "serve", "-c", str(tmp_path / "c.json"), "--port", str(free_port()),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LLMRELAY_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    text = stderr.decode()
    assert "server.tls" in text and "Traceback" not in text and "listening" not in text


async def test_cors_is_off_by_default_and_answers_configured_origins(tmp_path: Path) -> None:
    preflight = {
        "origin": "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    origin = {"origin": "https://app.example"}
    (tmp_path / "off").mkdir()
    (tmp_path / "on").mkdir()
    async with (
        run_gateway(MOCK, tmp_path / "off") as gw,
        aiohttp.ClientSession() as s,
        s.post(gw.url + CHAT, json=HELLO, headers=origin) as r,
    ):
        assert r.status == 200 and "access-control-allow-origin" not in r.headers
    config = {**MOCK, "server": {"cors": {"origins": ["https://app.example"]}}}
    async with run_gateway(config, tmp_path / "on") as gw, aiohttp.ClientSession() as s:
        async with s.options(gw.url + CHAT, headers=preflight) as r:
            assert r.status == 200
            assert r.headers["access-control-allow-origin"] == "https://app.example"
            assert "authorization" in r.headers["access-control-allow-headers"].lower()
        async with s.post(gw.url + CHAT, json=HELLO, headers=origin) as r:
            assert r.status == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        async with s.options(gw.url + CHAT, headers={**preflight, "origin": "https://evil.example"}) as r:
            assert r.status == 400 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_head_that_trickles_in_is_408_and_the_connection_closed(tmp_path: Path, workers: int) -> None:
    config = {**MOCK, "server": {"header_timeout": 0.5}}
    async with run_gateway(config, tmp_path, extra_args=("--workers", str(workers))) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        stop = asyncio.Event()

        async def trickle() -> None:  # one header byte every 50 ms, forever: each read is news
            try:
                writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n")
                while not stop.is_set():
                    writer.write(b"x-slow: a\r\n")
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.05)
            except ConnectionError:
                pass

        task = asyncio.create_task(trickle())
        answer = await asyncio.wait_for(reader.read(), 10)  # the server closes: read() ends
        stop.set()
        await task
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert json.loads(body)["type"] == "error"  # Anthropic's shape on /v1/messages
        async with aiohttp.ClientSession() as s, s.post(gw.url + CHAT, json=HELLO) as r:
            assert r.status == 200
    line = next(line for line in gw.access_lines() if line["status"] == 408)
    assert line["error"] == "request_timeout" and line["route"] == "/v1/messages"


async def test_a_connection_that_never_sends_a_head_is_closed(tmp_path: Path) -> None:
    config = {**MOCK, "server": {"header_timeout": 0.5}}
    async with run_gateway(config, tmp_path) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed without a word
        writer.close()


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/healthz", 200), ("POST", CHAT, 408)])
async def test_a_trickling_body_loses_its_connection_after_the_answer(
    tmp_path: Path, method: str, path: str, status: int
) -> None:
    """An answer sent before the body is in (a route that reads none, or the 408) does not leave
    the connection to the trickler: what is left of the body must arrive within body_timeout."""
    config = {**MOCK, "server": {"body_timeout": 0.5}}
    async with run_gateway(config, tmp_path) as gw:
        host, port = gw.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n{{".encode())
        answer = asyncio.ensure_future(reader.read())

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                while not answer.done():
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.wait({answer}, timeout=0.05)

        sender = asyncio.ensure_future(trickle())
        done, _ = await asyncio.wait({answer}, timeout=10)
        answer.cancel()
        await sender
        writer.close()
        assert done, "the server kept the connection while the body trickled in"
        assert answer.result().startswith(f"HTTP/1.1 {status} ".encode())
