"""A fake Gemini API (Generative Language ``v1beta``) speaking the real wire format over HTTP.

Serve it with :func:`tests.fakes.server.serve`::

    fake = GeminiUpstream(api_key="k")
    async with serve(fake.app()) as base_url:
        ...

Routes: ``POST /{version}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` and
``:batchEmbedContents``. Every request is recorded (:attr:`GeminiUpstream.requests`). Scripted
replies are consumed in order, one per request, whatever the route; with nothing scripted the fake
answers deterministically from the request: it echoes the last user text (as a JSON object in JSON
mode), calls the forced function when ``toolConfig`` says ``ANY``, and embeds text into stable
vectors. A wrong ``x-goog-api-key`` gets Google's ``API_KEY_INVALID`` reply.

Knobs for timeout and chaos tests: :meth:`~GeminiUpstream.hold` (hang before responding until
:meth:`~GeminiUpstream.release`, or forever), ``first_byte_delay``, ``drop_after`` (abort the
connection mid-stream), ``pause_after`` (keep a stream open and idle), and the ``disconnected``
event, set when a client goes away mid-stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any

    @property
    def model(self) -> str:
        return self.path.rsplit("/", 1)[-1].split(":", 1)[0]

    @property
    def action(self) -> str:
        return self.path.rsplit(":", 1)[-1]


@dataclass
class Reply:
    """One scripted answer. ``events`` makes it an SSE stream; else ``body`` is sent as is."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] | None = None
    drop_after: int | None = None
    pause_after: int | None = None


def error_body(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Google API error body (``google.rpc.Status`` in JSON)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


_KEY_INVALID = error_body(
    400,
    "INVALID_ARGUMENT",
    "API key not valid. Please pass a valid API key.",
    [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ],
)


class GeminiUpstream:
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

    def reply_error(
        self,
        code: int,
        status: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.reply_json(error_body(code, status, message, details), status=code, headers=headers)

    def reply_raw(self, status: int, body: bytes, *, headers: dict[str, str] | None = None) -> None:
        self._script.append(Reply(status=status, body=body, headers=dict(headers or {})))

    def reply_stream(
        self,
        events: list[dict[str, Any]],
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
        app.router.add_post("/{version}/models/{call}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        payload = json.loads(raw) if raw else None
        self.requests.append(
            RecordedRequest(
                path=request.path,
                query=dict(request.query),
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
        call = request.match_info["call"]
        model, _, action = call.partition(":")
        if self.api_key is not None and request.headers.get("x-goog-api-key") != self.api_key:
            return web.json_response(_KEY_INVALID, status=400)
        reply = self._script.popleft() if self._script else self._default(action, model, payload)
        if reply.events is not None:
            return await self._stream(request, reply)
        if isinstance(reply.body, bytes):
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", **reply.headers}
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
                # Google separates events with CRLF pairs.
                await response.write(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
            if reply.drop_after is not None:
                _abort(request)
                return response
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response

    def _default(self, action: str, model: str, payload: Any) -> Reply:
        body = payload if isinstance(payload, dict) else {}
        if action == "batchEmbedContents":
            return Reply(body=_embeddings(body))
        parts, finish_text = _answer(body)
        usage = {
            "promptTokenCount": _prompt_tokens(body),
            "candidatesTokenCount": sum(len(str(p).split()) for p in parts),
        }
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        meta = {"modelVersion": model, "responseId": f"fake-{self._count}"}
        final = {"candidates": [_candidate(parts, "STOP")], "usageMetadata": usage, **meta}
        if action != "streamGenerateContent":
            return Reply(body=final)
        if not finish_text:
            return Reply(events=[final])
        words = finish_text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        events: list[dict[str, Any]] = [
            {"candidates": [_candidate([{"text": p}], None)], **meta} for p in pieces[:-1]
        ]
        events.append(
            {"candidates": [_candidate([{"text": pieces[-1]}], "STOP")], "usageMetadata": usage, **meta}
        )
        return Reply(events=events)


def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def _answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The default reply parts, and its text (empty for a function call)."""
    calling = body.get("toolConfig", {}).get("functionCallingConfig", {})
    declarations = [d for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
    if calling.get("mode") == "ANY" and declarations:
        allowed = calling.get("allowedFunctionNames") or [declarations[0]["name"]]
        return [{"functionCall": {"name": allowed[0], "args": {}}}], ""
    last = ""
    for content in body.get("contents", []):
        texts = [p["text"] for p in content.get("parts", []) if "text" in p]
        if content.get("role") == "user" and texts:
            last = "".join(texts)
    if body.get("generationConfig", {}).get("responseMimeType") == "application/json":
        text = json.dumps({"echo": last})
    else:
        text = f"You said: {last}"
    return [{"text": text}], text


def _prompt_tokens(body: dict[str, Any]) -> int:
    texts = [
        p.get("text", "")
        for c in [*body.get("contents", []), body.get("systemInstruction", {})]
        for p in c.get("parts", [])
    ]
    return sum(len(t.split()) for t in texts) + len(body.get("contents", []))


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    vectors = []
    for item in body.get("requests", []):
        text = "".join(p.get("text", "") for p in item["content"]["parts"])
        vectors.append({"values": unit_vector(text, item.get("outputDimensionality", 8))})
    return {"embeddings": vectors}


def unit_vector(text: str, size: int) -> list[float]:
    """The fake's embedding of ``text``: stable, unit length."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(size)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


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
