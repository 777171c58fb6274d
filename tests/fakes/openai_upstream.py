"""A fake OpenAI-compatible upstream over real HTTP, for provider, server and chaos tests.

Serve ``OpenAIUpstream().app`` with :func:`tests.fakes.server.serve` and point a target's
``base_url`` at ``<url>/v1``. It speaks the real wire format: ``POST /v1/chat/completions`` (unary and
SSE with ``data: [DONE]``), ``POST /v1/embeddings`` (float or base64) and ``POST /v1/responses``
(the Responses API, unary and named ``response.*`` events: :mod:`tests.fakes.openai_responses_fake`).
Every request is recorded (path, lower-cased headers, parsed JSON). Replies come from a queue of
scripted :class:`Reply` / :class:`StreamReply` values; with nothing scripted it answers
deterministically from the request (echoes the last user message, calls the forced tool, answers
JSON when JSON is asked for).

It also serves Azure OpenAI's deployment routes, ``POST /openai/deployments/{deployment}/chat/completions``
and ``.../embeddings`` (base URL: the fake's root), the same way; :attr:`Recorded.query` keeps the
``api-version`` and the echoed ``model`` is the deployment, as Azure answers.

Knobs: :meth:`hold` / :meth:`release` (hang before responding, forever if never released),
``first_byte_delay`` (seconds before the status line), ``StreamReply.drop_after`` (cut the TCP
connection mid-stream), ``StreamReply.hang_after`` (keep the stream open until the client leaves);
:attr:`disconnected` is set when a client goes away mid-stream, :attr:`received` on each request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.openai_responses_fake import echo_response, response_events

CREATED = 1_700_000_000


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    json: Any
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """A whole response; ``body`` is JSON-encoded unless it is ``bytes``."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamReply:
    """An SSE response. ``events`` items are sent as ``data:`` lines (dicts JSON-encoded).

    ``done`` appends ``data: [DONE]``; ``drop_after`` closes the connection after that many events
    (before ``[DONE]``); ``hang_after`` keeps it open after the events until the client leaves.
    ``named`` writes each event's ``type`` as its SSE ``event:`` name (the Responses API's framing).
    """

    events: list[Any]
    done: bool = True
    named: bool = False
    drop_after: int | None = None
    hang_after: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class OpenAIUpstream:
    def __init__(self, *, first_byte_delay: float = 0.0, accepted_keys: set[str] | None = None) -> None:
        self.accepted_keys = accepted_keys
        """When set, a request whose ``Authorization: Bearer`` key is not in it gets OpenAI's 401
        (mutable: a test rotating keys adds the new one and revokes the old)."""
        self.requests: list[Recorded] = []
        self.replies: deque[Reply | StreamReply] = deque()
        self.first_byte_delay = first_byte_delay
        self.received = asyncio.Event()
        self.disconnected = asyncio.Event()
        self._gate = asyncio.Event()
        self._gate.set()

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and events (tests that share one fake)."""
        self.replies.clear()
        self.requests.clear()
        self.received.clear()
        self.disconnected.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        return app

    def script(self, *replies: Reply | StreamReply) -> None:
        self.replies.extend(replies)

    def hold(self) -> None:
        """Requests wait before responding until :meth:`release` (forever if never released)."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    async def _record(self, request: web.Request) -> Any:
        payload = json.loads(await request.read())
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Recorded(request.path, headers, payload, dict(request.query)))
        deployment = request.match_info.get("deployment")
        if deployment is not None:  # Azure answers with the deployment's model, not the body's
            payload = {**payload, "model": deployment}
        self.received.set()
        await self._gate.wait()
        if self.first_byte_delay:
            await asyncio.sleep(self.first_byte_delay)
        return payload

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        payload = await self._record(request)
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        reply = self.replies.popleft() if self.replies else _echo_chat(payload)
        return await self._send(request, reply)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        payload = await self._record(request)
        if self.replies:
            return await self._send(request, self.replies.popleft())
        answer = echo_response(payload)
        if payload.get("stream"):
            return await self._send(request, StreamReply(response_events(answer), done=False, named=True))
        return await self._send(request, Reply(answer))

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.accepted_keys is None:
            return None
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and key in self.accepted_keys:
            return None
        error = {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
        return web.json_response({"error": error}, status=401)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        payload = await self._record(request)
        reply = self.replies.popleft() if self.replies else _echo_embeddings(payload)
        return await self._send(request, reply)

    async def _send(self, request: web.Request, reply: Reply | StreamReply) -> web.StreamResponse:
        if isinstance(reply, StreamReply):
            return await self._stream(request, reply)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        headers = {"content-type": "application/json", **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers)

    async def _stream(self, request: web.Request, reply: StreamReply) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"content-type": "text/event-stream", **reply.headers}
        )
        await response.prepare(request)
        events = [*reply.events, "[DONE]"] if reply.done else list(reply.events)
        try:
            for n, event in enumerate(events):
                if reply.drop_after is not None and n >= reply.drop_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                data = event if isinstance(event, str) else json.dumps(event)
                name = f"event: {event['type']}\n" if reply.named and isinstance(event, dict) else ""
                await response.write(f"{name}data: {data}\n\n".encode())
            while reply.hang_after:
                await response.write(b": keep-alive\n\n")
                await asyncio.sleep(0.01)
        except ConnectionError:
            self.disconnected.set()
            return response
        await response.write_eof()
        return response


def _last_user_text(payload: dict[str, Any]) -> str:
    for message in reversed(payload.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _echo_chat(payload: dict[str, Any]) -> Reply | StreamReply:
    text = _last_user_text(payload)
    tools = payload.get("tools") or []
    choice = payload.get("tool_choice")
    call = None
    if tools and (choice == "required" or isinstance(choice, dict)):
        name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
        call = {"id": "call_fake_0", "name": name, "arguments": json.dumps({"text": text})}
    fmt = (payload.get("response_format") or {}).get("type", "text")
    answer = json.dumps({"echo": text}) if fmt != "text" else f"You said: {text}"
    prompt = sum(_words(str(m.get("content") or "")) for m in payload.get("messages", []))
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": _words(answer),
        "total_tokens": prompt + _words(answer),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    ident, model = "chatcmpl-fake", payload.get("model", "")
    if payload.get("stream"):
        include_usage = (payload.get("stream_options") or {}).get("include_usage", False)
        return StreamReply(_echo_chunks(ident, model, answer, call, usage if include_usage else None))
    message: dict[str, Any] = {"role": "assistant", "content": None if call else answer, "refusal": None}
    if call:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
        ]
    return Reply(
        {
            "id": ident,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if call else "stop",
                }
            ],
            "usage": usage,
            "system_fingerprint": "fp_fake",
        }
    )


def _echo_chunks(
    ident: str, model: str, answer: str, call: dict[str, str] | None, usage: dict[str, Any] | None
) -> list[Any]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [choice],
        }

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    if call:
        head = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        events.append(chunk({"tool_calls": [head]}))
        half = len(call["arguments"]) // 2
        for piece in (call["arguments"][:half], call["arguments"][half:]):
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    else:
        words = answer.split(" ")
        for i, word in enumerate(words):
            events.append(chunk({"content": word if i == 0 else " " + word}))
    events.append(chunk({}, "tool_calls" if call else "stop"))
    if usage is not None:
        final = chunk({})
        final["choices"] = []
        final["usage"] = usage
        events.append(final)
    return events


def fake_vector(text: str, size: int) -> list[float]:
    """Deterministic float32-exact values, so base64 round trips compare equal."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(size)]


def _echo_embeddings(payload: dict[str, Any]) -> Reply:
    inputs = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
    size = payload.get("dimensions") or 8
    base64_format = payload.get("encoding_format") == "base64"
    data = []
    for i, text in enumerate(inputs):
        vector = fake_vector(text, size)
        embedding: Any = vector
        if base64_format:
            embedding = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    tokens = sum(_words(t) for t in inputs)
    return Reply(
        {
            "object": "list",
            "data": data,
            "model": payload.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
