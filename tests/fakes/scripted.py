"""The machinery the Anthropic and Gemini fakes share: scripted replies, recording, hold/release,
and SSE serving with mid-stream drops and pauses. Each fake adds its routes, its auth check, its
default answer and how one event is framed.
"""

from __future__ import annotations

import asyncio
import json
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
        """The model named in a Gemini-style path (``.../models/<model>:<action>``)."""
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
    events: list[Any] | None = None
    drop_after: int | None = None
    pause_after: int | None = None


class ScriptedUpstream:
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

    # -- what a fake adds --------------------------------------------------------------------------

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        """The provider's answer to a wrong key, or None when the key is fine."""
        raise NotImplementedError

    def _default(self, request: web.Request, payload: Any) -> Reply:
        raise NotImplementedError

    def _frame(self, event: Any) -> bytes:
        raise NotImplementedError

    def _headers(self, reply: Reply) -> dict[str, str]:
        return reply.headers

    # -- scripting ---------------------------------------------------------------------------------

    def reply_json(self, body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._script.append(Reply(status=status, body=body, headers=dict(headers or {})))

    def reply_raw(self, status: int, body: bytes, *, headers: dict[str, str] | None = None) -> None:
        self._script.append(Reply(status=status, body=body, headers=dict(headers or {})))

    def reply_stream(
        self, events: list[Any], *, drop_after: int | None = None, pause_after: int | None = None
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

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and events (tests that share one fake)."""
        self._script.clear()
        self.requests.clear()
        self.arrived.clear()
        self.disconnected.clear()

    # -- serving -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        payload = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(RecordedRequest(request.path, dict(request.query), headers, payload))
        self._count += 1
        self.arrived.set()
        if self._gate is not None and not await _wait_unless_gone(request, self._gate):
            self.disconnected.set()
            return web.Response(status=499)
        if self.first_byte_delay:
            await asyncio.sleep(self.first_byte_delay)
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        reply = self._script.popleft() if self._script else self._default(request, payload)
        if reply.events is not None:
            return await self._stream(request, reply)
        if isinstance(reply.body, bytes):
            return web.Response(status=reply.status, body=reply.body, headers=self._headers(reply))
        return web.json_response(reply.body, status=reply.status, headers=self._headers(reply))

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        headers = {"Content-Type": "text/event-stream; charset=utf-8", **reply.headers}
        response = web.StreamResponse(status=200, headers=headers)
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
                await response.write(self._frame(event))
            if reply.drop_after is not None:
                _abort(request)
                return response
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


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
