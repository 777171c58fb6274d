"""A fast fake OpenAI upstream for the benchmark: a raw ASGI app under uvicorn (uvloop + httptools).

``POST /v1/chat/completions`` answers a fixed realistic completion, or with ``"stream": true`` an SSE
stream shaped like OpenAI's: a role-only first event (``"content": ""``, no text yet), then
``--chunks`` content chunks each preceded by ``--chunk-delay`` seconds, then the finish chunk, a
usage chunk and ``data: [DONE]`` at once. The role-only event goes out immediately, so time to first
byte and time to first *text* differ by one delay, as with a real model. It parses only the
``stream`` flag, so its own CPU cost stays small next to the gateway's.
Run: ``python bench/fake_upstream.py --port N [--chunks 20 --chunk-delay 0.005]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog."},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22},
    }
).encode()


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


USAGE = (
    b"data: "
    + json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "bench-model",
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32},
        }
    ).encode()
    + b"\n\n"
)


def make_app(chunks: int, chunk_delay: float) -> Any:
    role = chunk({"role": "assistant", "content": ""})
    contents = [chunk({"content": f"tok{i} "}) for i in range(chunks)]
    tail = chunk({}, "stop") + USAGE + b"data: [DONE]\n\n"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if b'"stream": true' not in body and b'"stream":true' not in body:
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": COMPLETION})
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": role, "more_body": True})
        for piece in contents:
            if chunk_delay:
                await asyncio.sleep(chunk_delay)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": tail})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds before each content chunk")
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.chunks, args.chunk_delay),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
