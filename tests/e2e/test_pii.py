"""PII redaction through the real server, against a fake upstream that echoes the prompt (so a
value that leaked upstream would come back, and is also looked for in what the upstream got):
placeholders round-trip unary and streamed (split across chunks too), shadow mode only logs,
and log lines are masked always."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.gateway import run_gateway
from tests.fakes.openai_upstream import CREATED, OpenAIUpstream, StreamReply
from tests.fakes.server import serve

EMAIL, PHONE, CARD = "jane.roe@example.org", "+1 415 555 2671", "4111 1111 1111 1111"
PROMPT = f"Please email {EMAIL}, call {PHONE} and charge {CARD}."
SEEDED = (EMAIL, PHONE, CARD)


def chat(model: str, *, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "m",
        "choices": [choice],
    }


def streamed_text(body: str) -> str:
    text = ""
    for line in body.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                text += choice["delta"].get("content") or ""
    return text


async def test_placeholders_round_trip_and_nothing_leaks(tmp_path: Path) -> None:
    upstream = OpenAIUpstream()  # answers "You said: <the last user message>"
    async with serve(upstream.app()) as url:
        target = {"provider": "openai", "model": "m", "base_url": url + "/v1"}
        config = {
            "models": [
                {"name": "private", "targets": [target], "pii": {}},
                {"name": "watched", "targets": [target], "pii": {"enforce": False}},
            ]
        }
        async with run_gateway(config, tmp_path) as gw, aiohttp.ClientSession() as s:
            async with s.post(gw.url + "/v1/chat/completions", json=chat("private")) as r:
                unary = (await r.json())["choices"][0]["message"]["content"]
            async with s.post(gw.url + "/v1/chat/completions", json=chat("private", stream=True)) as r:
                streamed = streamed_text(await r.text())
            sent = [json.dumps(req.json) for req in upstream.requests]

            # A placeholder split across chunks by the upstream is restored whole.
            upstream.script(StreamReply([delta("Mailed <EMA"), delta("IL_1> ok"), delta("", "stop")]))
            async with s.post(gw.url + "/v1/chat/completions", json=chat("private", stream=True)) as r:
                split = streamed_text(await r.text())

            # Shadow mode: the prompt goes out as it is, the log says what would have been replaced.
            async with s.post(gw.url + "/v1/chat/completions", json=chat("watched")) as r:
                assert r.status == 200
            assert EMAIL in json.dumps(upstream.requests[-1].json)

            async with s.post(gw.url + "/v1/chat/completions", json={**chat("private"), "model": EMAIL}) as r:
                assert r.status == 404
        log = gw.log()
    assert unary == streamed == f"You said: {PROMPT}"
    assert split == f"Mailed {EMAIL} ok"
    assert len(sent) == 2 and all(value not in req for req in sent for value in SEEDED)
    assert "<EMAIL_1>" in sent[0] and "<PHONE_1>" in sent[0] and "<CARD_1>" in sent[0]
    assert "shadow: pii redaction would replace 1 CARD, 1 EMAIL, 1 PHONE" in log
    assert all(value not in log for value in SEEDED)
    assert '"model":"[EMAIL]"' in log  # the access line of the made-up model name, masked
