"""What the fake OpenAI upstream answers on ``POST /v1/responses`` (OpenAI's Responses API).

Written from OpenAI's API reference, independently of llmrelay's own Responses codecs, so that a
test of the ``api: responses`` target crosses two implementations of the format. The default
answer echoes the last user text ("You said: ..."), answers ``{"echo": ...}`` when ``text.format``
asks for JSON, and calls the tool ``tool_choice`` forces. :func:`response_events` turns a whole
Response into the named events a stream sends, text word by word and arguments in two pieces.
"""

from __future__ import annotations

import json
from typing import Any

CREATED = 1_700_000_000


def _last_user_text(payload: dict[str, Any]) -> str:
    items = payload.get("input")
    if isinstance(items, str):
        return items
    for item in reversed(items or []):
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content if p.get("type") == "input_text")
    return ""


def echo_response(payload: dict[str, Any]) -> dict[str, Any]:
    text = _last_user_text(payload)
    tools = payload.get("tools") or []
    choice = payload.get("tool_choice")
    rid = "resp_fake0123456789"
    if tools and (choice == "required" or isinstance(choice, dict)):
        name = choice["name"] if isinstance(choice, dict) else tools[0]["name"]
        output: list[dict[str, Any]] = [
            {
                "id": "fc_fake_0",
                "type": "function_call",
                "status": "completed",
                "arguments": json.dumps({"text": text}),
                "call_id": "call_fake_0",
                "name": name,
            }
        ]
    else:
        fmt = ((payload.get("text") or {}).get("format") or {}).get("type", "text")
        answer = json.dumps({"echo": text}) if fmt != "text" else f"You said: {text}"
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": answer}
        output = [
            {
                "id": "msg_fake_0",
                "type": "message",
                "status": "completed",
                "content": [part],
                "role": "assistant",
            }
        ]
    limit = payload.get("max_output_tokens")
    status = "incomplete" if limit is not None and limit < 3 else "completed"
    prompt = len(json.dumps(payload.get("input")).split())
    return {
        "id": rid,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": payload.get("model", ""),
        "output": output,
        "parallel_tool_calls": True,
        "store": payload.get("store", True),
        "tools": tools,
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + 5,
        },
    }


def response_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    opening = {**response, "status": "in_progress", "output": [], "usage": None}
    add("response.created", response=opening)
    add("response.in_progress", response=opening)
    for n, item in enumerate(response["output"]):
        if item["type"] == "message":
            add(
                "response.output_item.added",
                output_index=n,
                item={**item, "status": "in_progress", "content": []},
            )
            ref = {"item_id": item["id"], "output_index": n, "content_index": 0}
            add(
                "response.content_part.added",
                **ref,
                part={"type": "output_text", "annotations": [], "text": ""},
            )
            text = item["content"][0]["text"]
            words = text.split(" ")
            for i, word in enumerate(words):
                add("response.output_text.delta", **ref, delta=word if i == 0 else " " + word, logprobs=[])
            add("response.output_text.done", **ref, text=text, logprobs=[])
            add("response.content_part.done", **ref, part=item["content"][0])
        else:
            add(
                "response.output_item.added",
                output_index=n,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            args = item["arguments"]
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                add("response.function_call_arguments.delta", item_id=item["id"], output_index=n, delta=piece)
            add("response.function_call_arguments.done", item_id=item["id"], output_index=n, arguments=args)
        add("response.output_item.done", output_index=n, item=item)
    add(f"response.{response['status']}", response=response)
    return events
