"""A fake Gemini API (Generative Language ``v1beta``) speaking the real wire format over HTTP.

Serve it with :func:`tests.fakes.server.serve`::

    fake = GeminiUpstream(api_key="k")
    async with serve(fake.app()) as base_url:
        ...

Routes: ``POST /{version}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``,
``:batchEmbedContents`` and ``:countTokens`` (``contents`` or a whole ``generateContentRequest``,
not both, as the real one: ``{"totalTokens": N, "promptTokensDetails": [...]}``). Every request
is recorded (:attr:`GeminiUpstream.requests`). Scripted
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

import hashlib
import json
import math
from typing import Any

from aiohttp import web

from tests.fakes.scripted import Reply, ScriptedUpstream


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


class GeminiUpstream(ScriptedUpstream):
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

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/models/{call}", self._handle)
        return app

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("x-goog-api-key") == self.api_key:
            return None
        return web.json_response(_KEY_INVALID, status=400)

    def _frame(self, event: dict[str, Any]) -> bytes:
        # Google separates events with CRLF pairs.
        return b"data: " + json.dumps(event).encode() + b"\r\n\r\n"

    def _default(self, request: web.Request, payload: Any) -> Reply:
        model, _, action = request.match_info["call"].partition(":")
        body = payload if isinstance(payload, dict) else {}
        if action == "batchEmbedContents":
            return Reply(body=_embeddings(body))
        if action == "countTokens":
            return _count_tokens(model, body)
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


def stream_events(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``streamGenerateContent`` events for a whole ``generateContent`` ``reply``.

    Each text or thought part is split at words, one piece per event (its ``thoughtSignature``
    rides on the last piece, as Gemini sends it); a function call goes whole in one event; the
    last event carries ``finishReason`` and the usage.
    """
    candidate = reply["candidates"][0]
    meta = {k: v for k, v in reply.items() if k in ("modelVersion", "responseId")}
    pieces: list[dict[str, Any]] = []
    for part in candidate["content"]["parts"]:
        if "text" not in part:
            pieces.append(part)
            continue
        words = part["text"].split(" ")
        texts = [w if i == 0 else " " + w for i, w in enumerate(words)]
        plain = {k: v for k, v in part.items() if k != "thoughtSignature"}
        pieces += [{**plain, "text": t} for t in texts[:-1]]
        pieces.append({**part, "text": texts[-1]})
    events = [{"candidates": [_candidate([p], None)], **meta} for p in pieces]
    events[-1]["candidates"][0]["finishReason"] = candidate.get("finishReason", "STOP")
    if "usageMetadata" in reply:
        events[-1]["usageMetadata"] = reply["usageMetadata"]
    return events


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


def _count_tokens(model: str, body: dict[str, Any]) -> Reply:
    generate = body.get("generateContentRequest")
    if (generate is None) == ("contents" not in body):
        message = "either contents or generateContentRequest must be set, not both"
        return Reply(body=error_body(400, "INVALID_ARGUMENT", message), status=400)
    if generate is not None and generate.get("model") != f"models/{model}":
        return Reply(
            body=error_body(400, "INVALID_ARGUMENT", "generateContentRequest.model is wrong"), status=400
        )
    counted = generate or body
    tools = len(json.dumps(counted.get("tools", [])).split()) if counted.get("tools") else 0
    total = _prompt_tokens(counted) + tools
    return Reply(
        body={"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
    )


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
