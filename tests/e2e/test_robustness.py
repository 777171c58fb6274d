"""Bad input, limits, disconnects and heartbeats, over raw HTTP against the running gateway."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import APP_KEY, MASTER_KEY, Upstreams
from tests.e2e.gateway import Gateway
from tests.fakes.openai_upstream import StreamReply

pytestmark = pytest.mark.asyncio(loop_scope="module")

AUTH = {"authorization": f"Bearer {APP_KEY}", "content-type": "application/json"}
HELLO = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}


async def post(
    gateway: Gateway, path: str, body: bytes, headers: dict[str, str] = AUTH
) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as s, s.post(gateway.url + path, data=body, headers=headers) as r:
        raw = await r.read()
        return r.status, json.loads(raw) if raw.startswith(b"{") else raw, dict(r.headers)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (json.dumps({"messages": []}).encode(), "model"),
        (json.dumps({"model": "gpt"}).encode(), "messages"),
        (
            json.dumps({"model": "gpt", "messages": [{"role": "user", "content": 5}]}).encode(),
            "messages[0].content",
        ),
        (json.dumps({**HELLO, "temperature": "hot"}).encode(), "temperature"),
    ],
)
async def test_malformed_requests_are_precise_400s(gateway: Gateway, body: bytes, param: str | None) -> None:
    status, payload, _ = await post(gateway, "/v1/chat/completions", body)
    assert status == 400
    error = payload["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param:
        assert param in (error.get("param") or "") or param in error["message"]


async def test_anthropic_route_errors_are_anthropic_shaped(gateway: Gateway) -> None:
    status, payload, _ = await post(gateway, "/v1/messages", b"{oops", {"x-api-key": APP_KEY})
    assert status == 400
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"


async def test_oversized_body_is_413_and_the_server_keeps_serving(gateway: Gateway) -> None:
    big = json.dumps({**HELLO, "messages": [{"role": "user", "content": "x" * 70_000}]}).encode()
    status, payload, _ = await post(gateway, "/v1/chat/completions", big)
    assert status == 413 and "limit" in payload["error"]["message"]
    status, _, _ = await post(
        gateway, "/v1/chat/completions", json.dumps({**HELLO, "model": "mock"}).encode()
    )
    assert status == 200


async def test_unknown_route_and_method(gateway: Gateway) -> None:
    status, payload, _ = await post(gateway, "/v1/nothing", b"{}")
    assert status == 404 and payload["error"]["type"] == "not_found_error"
    async with aiohttp.ClientSession() as s, s.get(gateway.url + "/v1/chat/completions") as r:
        assert r.status == 405


async def test_health_and_readiness(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(gateway.url + "/healthz") as r:
            assert r.status == 200
        async with s.get(gateway.url + "/readyz") as r:
            assert r.status == 200 and (await r.json())["checks"] == {"keys": True, "state": True}


async def test_timeout_header_bounds_the_call(gateway: Gateway, upstreams: Upstreams) -> None:
    upstreams.openai.hold()
    try:
        headers = {**AUTH, "x-llmrelay-timeout": "0.3"}
        status, payload, _ = await post(gateway, "/v1/chat/completions", json.dumps(HELLO).encode(), headers)
    finally:
        upstreams.openai.release()
    assert status == 504 and payload["error"]["code"] == "deadline_exceeded"


def _chunk(text: str) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


async def test_client_disconnect_closes_the_upstream_stream(gateway: Gateway, upstreams: Upstreams) -> None:
    upstreams.openai.script(StreamReply([_chunk("a"), _chunk("b")], done=False, hang_after=True))
    body = json.dumps({**HELLO, "stream": True}).encode()
    async with aiohttp.ClientSession() as s:
        resp = await s.post(gateway.url + "/v1/chat/completions", data=body, headers=AUTH)
        assert resp.status == 200
        assert (await resp.content.readline()).startswith(b"data: ")
        resp.close()  # the client goes away mid-stream
    await asyncio.wait_for(upstreams.openai.disconnected.wait(), timeout=1.0)


async def test_heartbeats_while_the_upstream_is_silent(gateway: Gateway, upstreams: Upstreams) -> None:
    upstreams.openai.script(StreamReply([_chunk("a")], done=False, hang_after=True))
    body = json.dumps({**HELLO, "stream": True}).encode()
    async with (
        aiohttp.ClientSession() as s,
        s.post(gateway.url + "/v1/chat/completions", data=body, headers=AUTH) as resp,
    ):
        lines = []
        while b": keep-alive\n" not in lines:
            lines.append(await asyncio.wait_for(resp.content.readline(), timeout=5))
    assert lines[0].startswith(b"data: ")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": JSON | st.sampled_from(["gpt", "mock", "claude"]),
        "messages": JSON | st.lists(st.fixed_dictionaries({"role": JSON, "content": JSON}), max_size=3),
        "stream": JSON,
        "tools": JSON,
        "tool_choice": JSON,
        "max_tokens": JSON,
        "response_format": JSON,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=FIELDS | JSON, path=st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/embeddings"]))
async def test_fuzzed_bodies_never_cause_a_5xx(gateway: Gateway, body: Any, path: str) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(gateway.url + path, data=json.dumps(body), headers=AUTH) as r,
    ):
        await r.read()
    assert r.status < 500, f"{r.status} for {body!r}"


BODY_ROUTES = [
    ("/v1/chat/completions", AUTH, "openai"),
    ("/v1/messages", {"x-api-key": APP_KEY, "content-type": "application/json"}, "anthropic"),
    ("/v1/embeddings", AUTH, "openai"),
]


def short(payload: Any) -> str:
    return repr(payload)[:300]


def assert_error_shape(payload: Any, shape: str) -> dict[str, Any]:
    if shape == "anthropic":
        assert payload["type"] == "error"
    error: dict[str, Any] = payload["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    return error


@pytest.mark.parametrize(("path", "headers", "shape"), BODY_ROUTES)
async def test_a_body_that_is_not_utf8_is_a_logged_400(
    gateway: Gateway, path: str, headers: dict[str, str], shape: str
) -> None:
    headers = {**headers, "x-request-id": f"not-utf8-{shape}-{path.rsplit('/', 1)[1]}"}
    status, payload, response_headers = await post(gateway, path, b'{"model": "mock\xff\xfe"}', headers)
    assert status == 400, short(payload)
    assert "UTF-8" in assert_error_shape(payload, shape)["message"]
    assert {k.lower(): v for k, v in response_headers.items()}["x-request-id"] == headers["x-request-id"]
    lines = [line for line in gateway.access_lines() if line["request_id"] == headers["x-request-id"]]
    assert [(line["status"], line["route"]) for line in lines] == [(400, path)]


async def test_an_admin_body_that_is_not_utf8_is_a_400(gateway: Gateway) -> None:
    headers = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}
    status, payload, _ = await post(gateway, "/admin/keys", b'{"name": "\xff"}', headers)
    assert status == 400 and "UTF-8" in payload["error"]["message"]


VALID = {
    "/v1/chat/completions": {"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages": {"model": "mock", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/embeddings": {"model": "mock", "input": "hi"},
}


@pytest.mark.parametrize(("path", "headers", "shape"), BODY_ROUTES)
@pytest.mark.parametrize("depth", [65, 950, 30_000])
async def test_deeply_nested_json_is_a_400(
    gateway: Gateway, path: str, headers: dict[str, str], shape: str, depth: int
) -> None:
    # A valid request but for one extra field nested ``depth`` levels deep.
    body = json.dumps(VALID[path]).encode()[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    status, payload, _ = await post(gateway, path, body, headers)
    assert status == 400, short(payload)
    assert "nested" in assert_error_shape(payload, shape)["message"]


async def test_nesting_within_the_limit_is_accepted(gateway: Gateway) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(25):  # 25 nested object schemas: about 55 levels of JSON with the envelope
        schema = {"type": "object", "properties": {"a": schema}}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    body = json.dumps({**HELLO, "model": "mock", "tools": [tool]}).encode()
    status, payload, _ = await post(gateway, "/v1/chat/completions", body)
    assert status == 200, short(payload)


def embed(model: str = "mock", **fields: Any) -> bytes:
    return json.dumps({"model": model, "input": "hello", **fields}).encode()


@pytest.mark.parametrize("dimensions", [-1, 0, 16_385, 10_000_000, 2**70])
async def test_embedding_dimensions_out_of_range_are_400(gateway: Gateway, dimensions: int) -> None:
    status, payload, _ = await post(gateway, "/v1/embeddings", embed(dimensions=dimensions))
    assert status == 400, short(payload)
    assert payload["error"]["param"] == "dimensions"


async def test_embedding_dimensions_in_range_are_honoured(gateway: Gateway) -> None:
    status, payload, _ = await post(gateway, "/v1/embeddings", embed(dimensions=3))
    assert status == 200 and len(payload["data"][0]["embedding"]) == 3


async def test_embedding_inputs_are_capped_at_2048(gateway: Gateway) -> None:
    status, payload, _ = await post(gateway, "/v1/embeddings", embed(input=["x"] * 2049))
    assert status == 400 and payload["error"]["param"] == "input"
    status, payload, _ = await post(gateway, "/v1/embeddings", embed(input=["x"] * 2048))
    assert status == 200 and len(payload["data"]) == 2048


async def test_the_mock_refuses_embedding_work_that_would_block_the_server(gateway: Gateway) -> None:
    # Within the wire limits (2048 inputs, 16384 dimensions) but 33 million floats: the mock says no
    # instead of spending seconds of the event loop on a body of hundreds of megabytes.
    body = embed(input=[f"text {i}" for i in range(2048)], dimensions=16_384)
    status, payload, _ = await post(gateway, "/v1/embeddings", body)
    assert status == 400 and "mock" in payload["error"]["message"], short(payload)


async def test_head_on_get_routes_is_200_without_a_body(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/healthz", "/readyz", "/v1/models"):
            async with s.head(gateway.url + path, headers=AUTH) as r:
                assert r.status == 200, path
                assert await r.read() == b""
        async with s.post(gateway.url + "/healthz") as r:
            assert r.status == 405 and r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/v1/messages/batches", "/v1/messages/batches/x"])
async def test_unknown_paths_under_messages_answer_in_anthropic_shape(gateway: Gateway, path: str) -> None:
    status, payload, _ = await post(gateway, path, b"{}", {"x-api-key": APP_KEY})
    assert status == 404
    assert payload["type"] == "error" and payload["error"]["type"] == "not_found_error"
