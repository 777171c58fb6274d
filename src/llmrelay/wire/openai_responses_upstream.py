"""The Responses API as an *upstream* format: canonical -> ``POST /v1/responses`` -> canonical. Pure.

Used by an ``openai`` target configured with ``options: {api: responses}`` (OpenAI's newer models
and features live there first). The server's own ``/v1/responses`` face is the other direction
(:mod:`llmrelay.wire.openai_responses`). The request is sent with ``store: false``: the gateway
keeps conversations itself, so every turn goes upstream whole, as with Chat Completions.

Mapping: system messages become ``developer`` messages in place; user text and images become
``input_text`` / ``input_image``; an assistant turn becomes an ``output_text`` message and one
``function_call`` item per call; tool results become ``function_call_output`` items. Reasoning
parts from another provider are left out (their signatures are only valid there). Parameters the
Responses API does not have (``stop``, ``seed``) and Chat Completions knobs in
``extensions["openai"]`` are refused by name with a 400 rather than silently dropped.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmrelay.errors import InvalidRequest, UpstreamError
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    ImagePart,
    Message,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from llmrelay.wire.foreign_params import SERVER_HANDLED
from llmrelay.wire.openai_errors import decode_stream_error
from llmrelay.wire.sse import Event

_CHAT_ONLY_DEFAULTS: dict[str, Any] = {"n": 1, "logprobs": False}


def encode_upstream_request(request: ChatRequest, *, model: str) -> dict[str, Any]:
    """The ``POST /v1/responses`` body for ``request``."""
    refused = [name for name, on in (("stop", bool(request.stop)), ("seed", request.seed is not None)) if on]
    handled = SERVER_HANDLED.get("openai", frozenset())
    refused += [
        key
        for key, value in request.extension("openai").items()
        if key not in handled and value is not None and _CHAT_ONLY_DEFAULTS.get(key, object()) != value
    ]
    if refused:
        raise InvalidRequest(
            f"this target uses OpenAI's Responses API, which has no `{refused[0]}`", param=refused[0]
        )
    body: dict[str, Any] = {"model": model, "input": _input(request.messages), "store": False}
    if request.stream:
        body["stream"] = True
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": bool(t.strict),  # the Responses API's default is strict, Chat's is not
            }
            for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = (
            {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode
        )
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        spec: dict[str, Any] = {"type": fmt.type}
        if fmt.type == "json_schema":
            spec.update(name=fmt.name or "answer", schema=fmt.json_schema or {}, strict=bool(fmt.strict))
        body["text"] = {"format": spec}
    for key, value in (
        ("parallel_tool_calls", request.parallel_tool_calls),
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("max_output_tokens", request.max_tokens),
        ("user", request.user),
    ):
        if value is not None:
            body[key] = value
    if request.reasoning is not None and request.reasoning.effort is not None:
        body["reasoning"] = {"effort": request.reasoning.effort}
    return body


def _input(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            items.append({"role": "developer", "content": message.text})
        elif message.role == "user":
            items.append(
                {"role": "user", "content": [_user_part(p) for p in message.content if _is_input(p)]}
            )
        elif message.role == "assistant":
            if message.text:
                text = {"type": "output_text", "text": message.text, "annotations": []}
                items.append({"type": "message", "role": "assistant", "content": [text]})
            items += [
                {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
                for c in message.tool_calls
            ]
        else:
            items += [
                {"type": "function_call_output", "call_id": p.tool_call_id, "output": p.content}
                for p in message.content
                if isinstance(p, ToolResultPart)
            ]
    return items


def _is_input(part: ContentPart) -> bool:
    return isinstance(part, TextPart | ImagePart)


def _user_part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        return {"type": "input_image", "image_url": part.url, "detail": part.detail or "auto"}
    assert isinstance(part, TextPart)
    return {"type": "input_text", "text": part.text}


def decode_upstream_response(body: bytes, *, provider: str, created: int) -> ChatResponse:
    """A Response object as a canonical answer (a ``failed`` one raises)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        raise UpstreamError(f"{provider} sent an unreadable response", provider=provider) from err
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        raise UpstreamError(f"{provider} sent a response without `output`", provider=provider)
    _raise_if_failed(data, provider)
    parts: list[ContentPart] = []
    text: list[str] = []
    for item in data["output"]:
        if item.get("type") == "message":
            text += [c.get("text") or c.get("refusal") or "" for c in item.get("content") or []]
        elif item.get("type") == "function_call":
            parts.append(
                ToolCallPart(id=item["call_id"], name=item["name"], arguments=item.get("arguments") or "{}")
            )
    if text:
        parts.insert(0, TextPart(text="".join(text)))
    return ChatResponse(
        id=str(data.get("id", "")),
        model=str(data.get("model", "")),
        created=int(data.get("created_at") or created),
        message=Message(role="assistant", content=tuple(parts)),
        finish_reason=_finish(data, bool(parts) and isinstance(parts[-1], ToolCallPart)),
        usage=decode_usage(data.get("usage")),
        provider=provider,
    )


def decode_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cached_input_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
        reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
    )


def _finish(data: dict[str, Any], called: bool) -> FinishReason:
    if data.get("status") == "incomplete":
        reason = (data.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def _raise_if_failed(data: dict[str, Any], provider: str) -> None:
    if data.get("status") == "failed":
        raise decode_stream_error({"error": data.get("error") or "the response failed"}, provider=provider)


class ResponsesEventDecoder:
    """``response.*`` events -> canonical chunks; ``done`` once the response has ended."""

    def __init__(self, *, provider: str) -> None:
        self.provider = provider
        self.id = ""
        self.model = ""
        self.created: int | None = None
        self.done = False
        self._calls: dict[int, int] = {}  # output_index -> canonical tool-call index

    def feed_event(self, event: Event) -> tuple[ChatChunk, ...]:
        if self.done:
            return ()
        try:
            data = msgspec.json.decode(event.data)
        except msgspec.DecodeError as err:
            raise UpstreamError(
                f"{self.provider} sent a malformed stream event", provider=self.provider
            ) from err
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "response.output_text.delta":
            return (ChatChunk(text=data.get("delta") or ""),)
        if kind == "response.function_call_arguments.delta":
            index = self._calls.get(data.get("output_index", -1))
            if index is None:
                return ()
            return (ChatChunk(tool_calls=(ToolCallDelta(index=index, arguments=data.get("delta") or ""),)),)
        if kind == "response.output_item.added" and (data.get("item") or {}).get("type") == "function_call":
            item = data["item"]
            index = self._calls[data.get("output_index", len(self._calls))] = len(self._calls)
            delta = ToolCallDelta(
                index=index,
                id=item.get("call_id"),
                name=item.get("name"),
                arguments=item.get("arguments") or "",
            )
            return (ChatChunk(tool_calls=(delta,)),)
        if kind == "response.created":
            response = data.get("response") or {}
            self.id, self.model = str(response.get("id", "")), str(response.get("model", ""))
            self.created = response.get("created_at")
            return ()
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.done = True
            response = data.get("response") or {}
            _raise_if_failed(response, self.provider)
            finish = _finish(response, bool(self._calls))
            return (ChatChunk(finish_reason=finish), ChatChunk(usage=decode_usage(response.get("usage"))))
        if kind == "error":
            fields = {k: v for k, v in data.items() if k not in ("type", "sequence_number")}
            raise decode_stream_error({"error": fields}, provider=self.provider)
        return ()
