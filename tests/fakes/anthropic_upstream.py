"""A fake Anthropic Messages API speaking the real wire format over HTTP.

Serve it with :func:`tests.fakes.server.serve`::

    fake = AnthropicUpstream(api_key="k")
    async with serve(fake.app()) as base_url:
        ...

Routes: ``POST /v1/messages`` (unary, or named SSE events when the body says ``"stream": true``)
and ``POST /v1/messages/count_tokens`` (``{"input_tokens": N}``; like the real one, it refuses the
Messages fields it does not take, such as ``max_tokens``, with a 400).
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

import json
from typing import Any

from aiohttp import web

from tests.fakes.scripted import Reply, ScriptedUpstream

Event = tuple[str, dict[str, Any]]


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
    """The event sequence Anthropic streams for ``message``: text and thinking split at words (a
    thinking block's signature follows in one ``signature_delta``), a redacted-thinking block whole
    in its start event, tool input in two ``input_json_delta`` fragments, a ``ping`` after the
    first block starts."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events: list[Event] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _words(block["text"])]
        elif block["type"] == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _words(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif block["type"] == "redacted_thinking":
            opening, deltas = block, []
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


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def sse(events: list[Event]) -> bytes:
    """Events as Anthropic sends them on the wire."""
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


class AnthropicUpstream(ScriptedUpstream):
    def reply_message(self, content: list[dict[str, Any]], **fields: Any) -> None:
        """A unary ``message`` reply (see :func:`message_body` for ``fields``)."""
        self.reply_json(message_body(content, **fields))

    def reply_error(
        self, status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        self.reply_json(error_body(error_type, message), status=status, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_post("/v1/messages/count_tokens", self._handle)
        return app

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("x-api-key") == self.api_key:
            return None
        return web.json_response(error_body("authentication_error", "invalid x-api-key"), status=401)

    def _headers(self, reply: Reply) -> dict[str, str]:
        return {"request-id": f"req_fake_{self._count}", **reply.headers}

    def _frame(self, event: Event) -> bytes:
        return sse([event])

    def _default(self, request: web.Request, payload: Any) -> Reply:
        body = payload if isinstance(payload, dict) else {}
        if request.path.endswith("/count_tokens"):
            return _count_tokens(body)
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


_COUNTED = {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}


def _count_tokens(body: dict[str, Any]) -> Reply:
    extra = sorted(set(body) - _COUNTED)
    if extra:
        return Reply(
            body=error_body("invalid_request_error", f"{extra[0]}: Extra inputs are not permitted"),
            status=400,
        )
    if "model" not in body or "messages" not in body:
        return Reply(
            body=error_body("invalid_request_error", "model and messages: Field required"), status=400
        )
    tools = len(json.dumps(body.get("tools", [])).split()) if body.get("tools") else 0
    return Reply(body={"input_tokens": _prompt_tokens(body) + tools})


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
