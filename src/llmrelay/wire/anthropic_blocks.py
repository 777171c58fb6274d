"""Canonical messages as Anthropic ``messages``: each part becomes one content block.

Part of the Anthropic codec (:mod:`llmrelay.wire.anthropic` builds the request around these;
the server's responses reuse :func:`encode_reasoning`). Pure. Consecutive ``role="tool"``
messages become ONE user message of ``tool_result`` blocks, because Anthropic expects all results
of one assistant turn in the next user turn. A part's ``meta["anthropic"]`` (``cache_control``)
is written onto its block, and a message of one plain text block takes the compact string form.
Reasoning another provider produced is left out: its signature means nothing to Anthropic.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.types import ContentPart, ImagePart, Message, ReasoningPart, TextPart, ToolCallPart


def encode_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    previous_tool = False
    for i, message in enumerate(messages):
        if message.role == "system":
            continue
        blocks = [_encode_part(p, f"messages[{i}].content[{j}]") for j, p in enumerate(message.content)]
        blocks = [b for b in blocks if b is not None]
        is_tool = message.role == "tool"
        if is_tool and previous_tool:
            out[-1]["content"].extend(blocks)
        else:
            role = "assistant" if message.role == "assistant" else "user"
            out.append({"role": role, "content": blocks})
        previous_tool = is_tool
    for entry in out:
        content = entry["content"]
        if len(content) == 1 and content[0]["type"] == "text" and len(content[0]) == 2:
            entry["content"] = content[0]["text"]  # the compact form Anthropic documents
    return out


def _encode_part(part: ContentPart, where: str) -> dict[str, Any] | None:
    block = _encode_block(part, where)
    if block is not None and part.meta:
        block.update(part.provider_meta("anthropic"))
    return block


def _encode_block(part: ContentPart, where: str) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        # Anthropic rejects empty text blocks; an empty part carries nothing anyway.
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ReasoningPart):
        return encode_reasoning(part)
    if isinstance(part, ImagePart):
        return {"type": "image", "source": _image_source(part.url, where)}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": _input(part, where)}
    # What is left of the closed union is a ToolResultPart.
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": part.tool_call_id,
        "content": part.content,
    }
    if part.is_error:
        block["is_error"] = True
    return block


def encode_reasoning(part: ReasoningPart) -> dict[str, Any] | None:
    """A ``thinking`` or ``redacted_thinking`` block; ``None`` for another provider's reasoning."""
    if part.provider != "anthropic":
        return None
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    block: dict[str, Any] = {"type": "thinking", "thinking": part.text}
    if part.signature is not None:
        block["signature"] = part.signature
    return block


def _image_source(url: str, where: str) -> dict[str, str]:
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise InvalidRequest(
                "image data URLs must look like data:<media type>;base64,<data>", param=where
            )
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise InvalidRequest("image URLs must be https:// or data: URLs", param=where)


def _input(part: ToolCallPart, where: str) -> Any:
    try:
        value = msgspec.json.decode(part.arguments or "{}")
    except msgspec.DecodeError as err:
        raise InvalidRequest(
            f"tool call {part.id} arguments are not valid JSON", param=f"{where}.arguments"
        ) from err
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"tool call {part.id} arguments must be a JSON object", param=f"{where}.arguments"
        )
    return value
