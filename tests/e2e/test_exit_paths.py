"""How a request ends when it does not end normally, through the real server.

A client that leaves at any stage (before the first token, unary or streamed) cancels the upstream
call and is logged as ``client_closed`` (499); the graceful-shutdown limit ends an open stream with
an error event instead of cutting it; a caller's ``x-llmrelay-timeout`` cannot extend the
operator's ``timeout.total``; a stream that fails mid-way ends with the format's error event only.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from tests.e2e.gateway import Gateway, run_gateway
from tests.fakes.server import serve

pytestmark = pytest.mark.asyncio(loop_scope="module")


class HangingUpstream:
    """An OpenAI-compatible upstream that never answers, and notices when the caller gives up."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    async def _chat(self, request: web.Request) -> web.Response:
        await request.read()
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return web.Response()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hanging() -> AsyncIterator[tuple[HangingUpstream, str]]:
    upstream = HangingUpstream()
    async with serve(upstream.app(), cancel_on_disconnect=True) as url:
        yield upstream, url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(
    hanging: tuple[HangingUpstream, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    _, url = hanging
    config = {
        "models": [
            {
                "name": "hang",
                "targets": [{"provider": "openai", "model": "m", "base_url": url + "/v1"}],
                "retry": {"max_retries": 0},
            },
            {
                "name": "short",
                "targets": [{"provider": "mock", "options": {"latency": 5}}],
                "timeout": {"total": 0.5},
            },
            {"name": "breaks", "targets": [{"provider": "mock", "options": {"fail_after_chunks": 2}}]},
        ]
    }
    async with run_gateway(config, tmp_path_factory.mktemp("exit")) as gw:
        yield gw


async def _log_line(gateway: Gateway, request_id: str) -> dict[str, Any]:
    for _ in range(100):  # the line is written as the request ends; bounded wait for the file
        lines = [line for line in gateway.access_lines() if line["request_id"] == request_id]
        if lines:
            return lines[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no access-log line for {request_id}")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_leaving_before_the_first_token_cancels_the_upstream_call(
    gateway: Gateway, hanging: tuple[HangingUpstream, str], stream: bool
) -> None:
    upstream, _ = hanging
    upstream.entered.clear()
    upstream.cancelled.clear()
    request_id = f"leave-{stream}"
    body = {"model": "hang", "messages": [{"role": "user", "content": "hi"}], "stream": stream}

    async def call() -> None:
        async with (
            aiohttp.ClientSession() as s,
            s.post(gateway.url + "/v1/chat/completions", json=body, headers={"x-request-id": request_id}),
        ):
            pass

    client = asyncio.ensure_future(call())
    await asyncio.wait_for(upstream.entered.wait(), 10)
    client.cancel()  # the client goes away while the upstream is still thinking
    await asyncio.wait_for(upstream.cancelled.wait(), 10)
    line = await _log_line(gateway, request_id)
    assert line["status"] == 499 and line["outcome"] == "client_closed"


async def test_a_client_that_pipelined_a_second_request_and_left_cancels_the_first(
    gateway: Gateway, hanging: tuple[HangingUpstream, str]
) -> None:
    """uvicorn tells only a connection's newest request that its client left; the server's
    disconnect signal tells every request of the connection that is still unanswered."""
    upstream, _ = hanging
    upstream.entered.clear()
    upstream.cancelled.clear()
    port = int(gateway.url.rsplit(":", 1)[1])
    body = b'{"model": "hang", "messages": [{"role": "user", "content": "hi"}]}'
    first = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        b"x-request-id: pipelined-first\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    second = b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n"
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(first + second)  # both in one write: the second waits behind the first
    await asyncio.wait_for(upstream.entered.wait(), 10)
    writer.close()  # the client goes away with both unanswered
    await writer.wait_closed()
    await asyncio.wait_for(upstream.cancelled.wait(), 10)
    line = await _log_line(gateway, "pipelined-first")
    assert line["status"] == 499 and line["outcome"] == "client_closed"


async def test_a_caller_cannot_extend_the_operators_total_timeout(gateway: Gateway) -> None:
    body = {"model": "short", "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as s,
        s.post(gateway.url + "/v1/chat/completions", json=body, headers={"x-llmrelay-timeout": "100"}) as r,
    ):
        assert r.status == 504
        assert (await r.json())["error"]["code"] == "deadline_exceeded"


async def test_an_anthropic_stream_that_fails_mid_way_ends_with_an_error_event_only(gateway: Gateway) -> None:
    body = {
        "model": "breaks",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "one two three four five"}],
        "stream": True,
    }
    async with aiohttp.ClientSession() as s, s.post(gateway.url + "/v1/messages", json=body) as r:
        text = (await r.read()).decode()
    events = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "error"
    assert "message_stop" not in events and "message_delta" not in events


@pytest.mark.parametrize(
    ("path", "body", "terminator"),
    [
        ("/v1/chat/completions", {}, b"data: [DONE]"),
        ("/v1/messages", {"max_tokens": 100}, b"event: message_stop"),
    ],
)
async def test_the_drain_limit_ends_an_open_stream_with_an_error_event(
    tmp_path: Path, path: str, body: dict[str, Any], terminator: bytes
) -> None:
    words = " ".join(f"w{i}" for i in range(100))
    config = {
        "server": {"graceful_shutdown": 1},
        "models": [
            {
                "name": "slow",
                "targets": [{"provider": "mock", "options": {"text": words, "chunk_delay": 0.1}}],
            }
        ],
    }
    request = {"model": "slow", "messages": [{"role": "user", "content": "x"}], "stream": True, **body}
    async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s:
        async with s.post(gw.url + path, json=request) as r:
            first = await r.content.readline()
            assert first.startswith((b"data: ", b"event: "))
            gw.process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(r.content.read(), timeout=15)
        await asyncio.wait_for(gw.process.wait(), timeout=15)
    last = rest.rstrip().rsplit(b"\n", 1)[-1]
    assert last.startswith(b"data: ") and b"the server is shutting down" in last
    assert terminator not in rest
    log = gw.log()
    assert "Traceback" not in log and "CancelledError" not in log
    outcomes = [line.get("outcome") for line in gw.access_lines()]
    assert outcomes == ["shutdown"]
