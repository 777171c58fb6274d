"""The Responses API's Response object and its output items, from a canonical answer. Pure.

The unary answer of ``POST /v1/responses``, the ``response`` of its stream events
(:mod:`llmrelay.wire.openai_responses_stream`) and the stored copy that ``GET /v1/responses/{id}``
returns are all built here, with item ids derived from the response id (``msg_<id>``,
``fc_<id>_<n>``), so the streamed items and the final object name the same things. The request side
is :mod:`llmrelay.wire.openai_responses`. See docs/architecture.md §7.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from llmrelay.types import ChatResponse, FinishReason, Message, ToolCallPart, Usage
from llmrelay.wire.call_ids import with_signature

Status: TypeAlias = Literal["completed", "incomplete", "in_progress", "failed"]
_INCOMPLETE: dict[FinishReason, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}


def status_of(finish_reason: FinishReason | None) -> Status:
    """``incomplete`` when the answer was cut (length, content filter), else ``completed``."""
    return "incomplete" if finish_reason in _INCOMPLETE else "completed"


def message_id(response_id: str) -> str:
    return "msg_" + response_id.removeprefix("resp_")


def call_item_id(response_id: str, n: int) -> str:
    """The id of the ``n``-th function call item (in the order the answer made the calls)."""
    return f"fc_{response_id.removeprefix('resp_')}_{n}"


def text_item(response_id: str, text: str, status: Status) -> dict[str, Any]:
    return {
        "type": "message",
        "id": message_id(response_id),
        "status": status,
        "role": "assistant",
        "content": [] if status == "in_progress" else [output_text(text)],
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(response_id: str, n: int, call: ToolCallPart, status: Status) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": call_item_id(response_id, n),
        "call_id": with_signature(call.id, call.meta),
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }


def output_items(response_id: str, message: Message, status: Status) -> list[dict[str, Any]]:
    """The Response's ``output``: the text as one message item (also when the answer is empty),
    then one ``function_call`` item per call. Reasoning is not listed (it stays in the stored
    conversation, where ``previous_response_id`` sends it back to the provider that made it)."""
    items: list[dict[str, Any]] = []
    calls = message.tool_calls
    if message.text or not calls:
        items.append(text_item(response_id, message.text, status))
    items += [call_item(response_id, n, call, "completed") for n, call in enumerate(calls)]
    return items


def encode_usage(usage: Usage) -> dict[str, Any]:
    """``ResponseUsage``."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_input_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    echo: dict[str, Any],
    *,
    id: str,
    model: str,
    created_at: int,
    status: Status,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    finish_reason: FinishReason | None = None,
    error: dict[str, str] | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """A ``Response`` object (the unary answer, the ``response`` of stream events, the stored copy)."""
    reason = _INCOMPLETE.get(finish_reason) if finish_reason is not None else None
    obj: dict[str, Any] = {
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": {"reason": reason} if status == "incomplete" and reason else None,
        "model": model,
        "output": output,
        **echo,
    }
    if usage is not None:
        obj["usage"] = encode_usage(usage)
    return obj


def encode_response(
    response: ChatResponse, echo: dict[str, Any], *, id: str, created_at: int, completed_at: int
) -> dict[str, Any]:
    """The Response for a whole canonical answer."""
    status = status_of(response.finish_reason)
    return response_object(
        echo,
        id=id,
        model=response.model,
        created_at=created_at,
        status=status,
        output=output_items(id, response.message, status),
        usage=response.usage,
        finish_reason=response.finish_reason,
        completed_at=completed_at if status == "completed" else None,
    )
