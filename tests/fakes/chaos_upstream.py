"""A fake OpenAI upstream that misbehaves on purpose, for the chaos tests.

Each request draws from a seeded RNG: with probability ``fault_rate`` it gets one fault, picked
uniformly from ``faults``; otherwise a correct answer (unary or SSE) whose text is derived from the
request, so a test can tell a right answer from a corrupted or truncated one. ``dead = True``
turns every request into a 503 (a target that is down). Counts per outcome are kept.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

from aiohttp import web

FAULTS = (
    "500",
    "502",
    "503",
    "529",
    "429_retry_after",
    "429_plain",
    "reset",
    "hang",
    "slow_first_byte",
    "stream_error_before_first_chunk",
)


def answer_for(text: str) -> str:
    return f"echo:{text}"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-chaos",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "chaos",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class ChaosUpstream:
    def __init__(
        self,
        *,
        fault_rate: float = 0.3,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 7,
        slow: float = 0.3,
        drop_mid_stream: bool = False,
    ) -> None:
        self.fault_rate = fault_rate
        self.faults = faults
        self.slow = slow
        self.drop_mid_stream = drop_mid_stream
        self.dead = False
        self.outcomes: Counter[str] = Counter()
        self._rand = random.Random(seed)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    @property
    def calls(self) -> int:
        return sum(self.outcomes.values())

    def _draw(self) -> str:
        if self.dead:
            return "dead"
        if self._rand.random() < self.fault_rate:
            return self._rand.choice(self.faults)
        return "ok"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        payload = json.loads(await request.read())
        text = payload["messages"][-1]["content"]
        outcome = self._draw()
        self.outcomes[outcome] += 1
        if outcome == "dead":
            return _error(503, "server_error", "upstream is down")
        if outcome in ("500", "502", "503", "529"):
            return _error(int(outcome), "server_error", f"injected {outcome}")
        if outcome == "429_retry_after":
            return _error(429, "rate_limit_error", "slow down", {"retry-after-ms": "50"})
        if outcome == "429_plain":
            return _error(429, "rate_limit_error", "slow down")
        if outcome == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if outcome == "hang":
            await asyncio.Event().wait()
        if outcome == "slow_first_byte":
            await asyncio.sleep(self.slow)
        if payload.get("stream"):
            return await self._stream(request, text, error_first=outcome == "stream_error_before_first_chunk")
        if outcome == "stream_error_before_first_chunk":
            return _error(500, "server_error", "injected")
        return web.json_response(
            {
                "id": "chatcmpl-chaos",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "chaos",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer_for(text)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
        )

    async def _stream(self, request: web.Request, text: str, *, error_first: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        if error_first:
            error = {"error": {"message": "injected", "type": "server_error", "code": None}}
            await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
            return response
        answer = answer_for(text)
        pieces = [answer[i : i + 4] for i in range(0, len(answer), 4)]
        await response.write(_chunk({"role": "assistant", "content": ""}))
        for n, piece in enumerate(pieces):
            if self.drop_mid_stream and n == 1:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(_chunk({"content": piece}))
        await response.write(_chunk({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers)
