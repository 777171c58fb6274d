"""Output validation through the real server: a JSON answer that does not match is re-asked with
the error, then answered ``invalid_output`` in the caller's format; a stream ends with an error
event instead of ``[DONE]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.gateway import run_gateway
from tests.fakes.openai_upstream import CREATED, OpenAIUpstream, Reply
from tests.fakes.server import serve

ECHO_AS_INT = {"type": "object", "required": ["echo"], "properties": {"echo": {"type": "integer"}}}


def completion(text: str) -> Reply:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return Reply(
        {"id": "c", "object": "chat.completion", "created": CREATED, "model": "m", "choices": [choice]}
    )


def ask(fmt: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    messages = [{"role": "user", "content": "hello"}]
    return {"model": "json", "messages": messages, "response_format": fmt, "stream": stream}


async def test_invalid_json_is_reasked_then_refused_and_streams_end_with_an_error(tmp_path: Path) -> None:
    upstream = OpenAIUpstream()  # answers {"echo": "<prompt>"} in JSON mode
    async with serve(upstream.app()) as url:
        target = {"provider": "openai", "model": "m", "base_url": url + "/v1", "name": "up"}
        config = {"models": [{"name": "json", "targets": [target], "validate_output": {"max_retries": 1}}]}
        async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s:
            upstream.script(completion("Sure! Here is your JSON:"))
            async with s.post(gw.url + "/v1/chat/completions", json=ask({"type": "json_object"})) as r:
                body = await r.json()
                attempts = r.headers["x-llmrelay-attempts"]
            assert attempts == "2"  # the first answer and the re-ask
            # the fake echoes the last user message: here the re-ask's feedback, as valid JSON
            answer = json.loads(body["choices"][0]["message"]["content"])
            assert r.status == 200 and answer["echo"].startswith("Your answer was rejected: not valid JSON")
            reasked = upstream.requests[-1].json["messages"]
            assert [m["role"] for m in reasked] == ["user", "assistant", "user"]
            assert "not valid JSON" in reasked[2]["content"]

            upstream.reset()
            schema = {"type": "json_schema", "json_schema": {"name": "e", "schema": ECHO_AS_INT}}
            async with s.post(gw.url + "/v1/chat/completions", json=ask(schema)) as r:
                body = await r.json()
            assert r.status == 502 and body["error"]["code"] == "invalid_output"
            assert "after 2 attempts: at /echo: " in body["error"]["message"]
            assert body["error"]["message"].endswith(' is not of type "integer"')
            assert len(upstream.requests) == 2  # the first answer and one re-ask

            async with s.post(gw.url + "/v1/chat/completions", json=ask(schema, stream=True)) as r:
                text = await r.text()
            assert r.status == 200 and '"content":"{\\"echo\\":' in text.replace(" ", "")
            assert '"code": "invalid_output"' in text or '"code":"invalid_output"' in text
            assert "[DONE]" not in text
        log = gw.log()
    assert "invalid output from up" in log and "hello" not in log
