"""A fake Anthropic Messages API speaking the real wire format over HTTP.

Serve it with :func:`tests.fakes.server.serve`::

    fake = AnthropicUpstream(api_key="k")
    async with serve(fake.app()) as base_url:
        ...

Route: ``POST /v1/messages`` (unary, or named SSE events when the body says ``"stream": true``).
Every request is recorded (:attr:`AnthropicUpstream.requests`). Scripted replies are consumed in
order, one per request; with nothing scripted the fake answers deterministically from the request:
it echoes the last user text ("You said: ..."), answers ``{"echo": ...}`` as JSON when the request
asks for JSON (``output_config.format`` or a JSON system instruction), and calls the tool that
``tool_choice`` forces (``tool``, or the first tool for ``any``) with ``{"echo": ...}`` as input.
A wrong ``x-api-key`` gets Anthropic's 401 ``authentication_error``.

Knobs for timeout and chaos tests: :meth:`~AnthropicUpstream.hold` (hang before responding until
:meth:`~AnthropicUpstream.release`, or forever), ``first_byte_delay``, ``drop_after`` (abort the
connection mid-stream), ``pause_after`` (keep a stream open and silent), and the ``disconnected``
event, set when a client goes away while its request is held or its stream is being served.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Reply:
    """One scripted answer. ``events`` makes it an SSE stream; else ``body`` is sent as is."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Event] | None = None
    drop_after: int | None = None
    pause_after: int | None = None


def error_body(error_type: str, message: str, request_id: str = "req_fake") -> dict[str, Any]:
    """Anthropic's error shape."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def message_body(
    content: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    model: str = "claude-fake",
    id: str = "msg_fake",
    input_tokens: int = 10,
    output_tokens: int = 5,
) -> dict[str, Any]:
    """A complete ``message`` as the unary endpoint returns it."""
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def message_events(message: dict[str, Any]) -> list[Event]:
    """The event sequence Anthropic streams for ``message``: text split at words, tool input in
    two ``input_json_delta`` fragments, a ``ping`` after the first block starts."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            words = block["text"].split(" ")
            pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        else:
            opening = {**block, "input": {}}
            raw = json.dumps(block["input"])
            half = len(raw) // 2
            deltas = [{"type": "input_json_delta", "partial_json": part} for part in (raw[:half], raw[half:])]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    usage = {"output_tokens": message["usage"]["output_tokens"]}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def sse(events: list[Event]) -> bytes:
    """Events as Anthropic sends them on the wire."""
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


class AnthropicUpstream:
    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.first_byte_delay = 0.0
        self.arrived = asyncio.Event()
        """Set when any request has been received (before any hold or delay)."""
        self.disconnected = asyncio.Event()
        """Set when a client left while its request was held or its stream was being served."""
        self._script: deque[Reply] = deque()
        self._gate: asyncio.Event | None = None
        self._count = 0

    # -- scripting -------------------------------------------------------------------------------

    def reply_json(self, body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._script.append(Reply(status=status, body=body, headers=dict(headers or {})))

    def reply_message(self, content: list[dict[str, Any]], **fields: Any) -> None:
        """A unary ``message`` reply (see :func:`message_body` for ``fields``)."""
        self.reply_json(message_body(content, **fields))

    def reply_error(
        self, status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        self.reply_json(error_body(error_type, message), status=status, headers=headers)

    def reply_raw(self, status: int, body: bytes, *, headers: dict[str, str] | None = None) -> None:
        self._script.append(Reply(status=status, body=body, headers=dict(headers or {})))

    def reply_stream(
        self,
        events: list[Event],
        *,
        drop_after: int | None = None,
        pause_after: int | None = None,
    ) -> None:
        """Stream ``events``; abort the connection after ``drop_after`` of them, or stay open and
        silent after ``pause_after`` until the client leaves."""
        self._script.append(Reply(events=events, drop_after=drop_after, pause_after=pause_after))

    def hold(self) -> None:
        """Hang every request before it is answered, until :meth:`release` (never, if not called)."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    # -- serving ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and events (tests that share one fake)."""
        self._script.clear()
        self.requests.clear()
        self.arrived.clear()
        self.disconnected.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        payload = json.loads(raw) if raw else None
        self.requests.append(
            RecordedRequest(
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                json=payload,
            )
        )
        self._count += 1
        self.arrived.set()
        if self._gate is not None and not await _wait_unless_gone(request, self._gate):
            self.disconnected.set()
            return web.Response(status=499)
        if self.first_byte_delay:
            await asyncio.sleep(self.first_byte_delay)
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            body = error_body("authentication_error", "invalid x-api-key")
            return web.json_response(body, status=401)
        body = payload if isinstance(payload, dict) else {}
        reply = self._script.popleft() if self._script else self._default(body)
        if reply.events is not None:
            return await self._stream(request, reply)
        headers = {"request-id": f"req_fake_{self._count}", **reply.headers}
        if isinstance(reply.body, bytes):
            return web.Response(status=reply.status, body=reply.body, headers=headers)
        return web.json_response(reply.body, status=reply.status, headers=headers)

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream; charset=utf-8", **reply.headers},
        )
        await response.prepare(request)
        try:
            for n, event in enumerate(reply.events or []):
                if reply.drop_after is not None and n >= reply.drop_after:
                    _abort(request)
                    return response
                if reply.pause_after is not None and n >= reply.pause_after:
                    await _wait_unless_gone(request, asyncio.Event())
                    self.disconnected.set()
                    return response
                await response.write(sse([event]))
            if reply.drop_after is not None:
                _abort(request)
                return response
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response

    def _default(self, body: dict[str, Any]) -> Reply:
        last = _last_user_text(body)
        content = [_answer(body, last)]
        stop = "tool_use" if content[0]["type"] == "tool_use" else "end_turn"
        message = message_body(
            content,
            stop_reason=stop,
            model=body.get("model", "claude-fake"),
            id=f"msg_fake_{self._count}",
            input_tokens=_prompt_tokens(body),
            output_tokens=len(json.dumps(content[0]).split()),
        )
        if body.get("stream"):
            return Reply(events=message_events(message))
        return Reply(body=message)


def _answer(body: dict[str, Any], last: str) -> dict[str, Any]:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if tools and choice.get("type") in ("tool", "any"):
        name = choice.get("name") or tools[0]["name"]
        return {"type": "tool_use", "id": "toolu_fake_0", "name": name, "input": {"echo": last}}
    wants_json = "format" in body.get("output_config", {}) or "JSON" in str(body.get("system", ""))
    text = json.dumps({"echo": last}) if wants_json else f"You said: {last}"
    return {"type": "text", "text": text}


def _last_user_text(body: dict[str, Any]) -> str:
    last = ""
    for message in body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            last = content
        else:
            texts = [b["text"] for b in content or [] if b.get("type") == "text"]
            last = "".join(texts) or last
    return last


def _prompt_tokens(body: dict[str, Any]) -> int:
    return len(json.dumps(body.get("messages", [])).split()) + len(str(body.get("system", "")).split())


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


async def _wait_unless_gone(request: web.Request, event: asyncio.Event) -> bool:
    """Wait for ``event``; False if the client disconnected first.

    aiohttp does not cancel a handler when its client leaves, so the fake watches the transport.
    """
    while not event.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout=0.005)
        except TimeoutError:
            continue
    return True
