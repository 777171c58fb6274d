"""Anthropic Messages API codec, upstream direction: canonical request out, response and errors in.

Pure: no I/O, no clock (``created`` and ``now`` are passed in). The provider
(:mod:`llmrelay.providers.anthropic`) sends what :func:`encode_chat_request` builds and decodes the
reply here. Errors live in :mod:`llmrelay.wire.anthropic_errors`, named stream events (decoded, and
encoded for the server) in :mod:`llmrelay.wire.anthropic_stream`, and the server's inbound requests
and outbound responses in :mod:`llmrelay.wire.anthropic_inbound`. The mappings both directions
share (stop reasons, usage) are defined once, here; messages become content blocks in
:mod:`llmrelay.wire.anthropic_blocks`.

Where the two models differ, the choices are:

- **System prompts** are hoisted from ``role="system"`` messages into the top-level ``system``
  string, joined by blank lines, because Anthropic has no system role inside ``messages``.
- **Tool results**: consecutive ``role="tool"`` messages become ONE user message of
  ``tool_result`` blocks; Anthropic expects all results of one assistant turn in the next user turn.
- **JSON mode**: Anthropic has no ``json_object`` switch. ``json_object`` adds a system instruction
  (best effort; a ``validate_output`` policy can enforce it). ``json_schema`` uses, by default, a
  forced tool whose ``input_schema`` is the schema (:data:`JsonSchemaMode` ``"tool"``): tool input
  is the one output every Claude model shapes to a schema (guaranteed when ``strict``, which the
  format's ``strict`` sets on the tool). The decoders are told the
  tool's name (:func:`answer_tool`) and turn its ``input`` back into the response text, so callers
  see a JSON answer, not a tool call. ``"native"`` sends ``output_config.format`` instead, for
  models with structured outputs; use it with extended thinking, which forbids forced tool use.
- **Usage**: Anthropic's ``input_tokens`` excludes cache reads and cache writes. Canonical
  ``input_tokens`` is the whole prompt (``input + cache_read + cache_creation``),
  ``cached_input_tokens`` is ``cache_read`` (the discounted part) and ``cache_write_input_tokens``
  is ``cache_creation`` (billed above the input price), so totals stay comparable across providers
  and cost can price each part.
- **Thinking**: ``thinking`` and ``redacted_thinking`` blocks become
  :class:`~llmrelay.types.ReasoningPart` values (signature or encrypted data kept byte for byte)
  and go back out in place, because Anthropic verifies them when a tool-use turn continues. Parts
  another provider produced are left out (their signatures mean nothing here). Canonical
  ``reasoning`` becomes ``thinking`` with a budget (:mod:`llmrelay.wire.reasoning`).
- **Prompt caching**: a part's ``meta["anthropic"]`` (``cache_control``) is written onto its block;
  system prompts carrying one are sent as a list of text blocks instead of one joined string.
- ``seed`` has no Anthropic equivalent and is not sent.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec

from llmrelay.errors import InvalidRequest, UpstreamError
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from llmrelay.wire.anthropic_blocks import encode_messages
from llmrelay.wire.reasoning import anthropic_thinking

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``. 4096 is the lowest output cap of any Claude model still
served (Claude 3 Haiku), so the default is valid on every model, and ample for a chat answer;
callers who need longer outputs set ``max_tokens`` or the target option ``default_max_tokens``."""

ANSWER_TOOL = "json_response"
"""Name of the forced tool carrying a ``json_schema`` answer when the format names none."""

JSON_OBJECT_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose, no code fences."
)

JsonSchemaMode: TypeAlias = Literal["tool", "native"]

STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server-tool turn paused; canonical types have no "continue me"
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

STOP_REASONS_OUT: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
"""Canonical finish reason -> Anthropic ``stop_reason``, for the server's responses and streams."""


# -- request ---------------------------------------------------------------------------------


def answer_tool(request: ChatRequest, mode: JsonSchemaMode = "tool") -> str | None:
    """The forced tool that carries a ``json_schema`` answer for ``request``, or ``None``."""
    fmt = request.response_format
    if mode != "tool" or fmt is None or fmt.type != "json_schema":
        return None
    return fmt.name or ANSWER_TOOL


def encode_chat_request(
    request: ChatRequest,
    *,
    model: str,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    json_schema_mode: JsonSchemaMode = "tool",
) -> dict[str, Any]:
    """The ``/v1/messages`` body for ``request`` sent to ``model`` (the target's own model name).

    ``request.extension("anthropic")`` is merged last, so a caller's explicit knobs (``top_k``,
    ``thinking``, a ``system`` with ``cache_control`` blocks) win over what is derived here.
    """
    max_tokens = request.max_tokens if request.max_tokens is not None else default_max_tokens
    thinking: dict[str, Any] | None = None
    if request.reasoning is not None:
        thinking, max_tokens = anthropic_thinking(
            request.reasoning, max_tokens=request.max_tokens, default_max_tokens=default_max_tokens
        )
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": encode_messages(request.messages),
    }
    if thinking is not None:
        body["thinking"] = thinking
    system = _system(request)
    if system:
        body["system"] = system
    if request.stream:
        body["stream"] = True
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    _encode_tools(request, body, answer_tool(request, json_schema_mode))
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and json_schema_mode == "native":
        body["output_config"] = {"format": {"type": "json_schema", "schema": _schema(request)}}
    body.update(request.extension("anthropic"))
    return body


def _system(request: ChatRequest) -> str | list[dict[str, Any]]:
    """One joined string, or text blocks when a system part carries ``cache_control``."""
    parts = [
        p
        for m in request.messages
        if m.role == "system"
        for p in m.content
        if isinstance(p, TextPart) and p.text
    ]
    fmt = request.response_format
    extra = [JSON_OBJECT_INSTRUCTION] if fmt is not None and fmt.type == "json_object" else []
    if not any(p.provider_meta("anthropic") for p in parts):
        texts = [m.text for m in request.messages if m.role == "system" and m.text]
        return "\n\n".join(texts + extra)
    blocks = [{"type": "text", "text": p.text, **p.provider_meta("anthropic")} for p in parts]
    return blocks + [{"type": "text", "text": text} for text in extra]


def _encode_tools(request: ChatRequest, body: dict[str, Any], answer: str | None) -> None:
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        entry: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters}
        if tool.description:
            entry["description"] = tool.description
        if tool.strict is not None:
            entry["strict"] = tool.strict
        if tool.meta:
            entry.update(tool.meta.get("anthropic", {}))
        tools.append(entry)
    choice = request.tool_choice
    mode = choice.mode if choice is not None else "auto"
    forced: dict[str, Any] | None = None
    if answer is not None:
        entry = {
            "name": answer,
            "description": "Give the final answer as input to this tool.",
            "input_schema": _schema(request),
        }
        if request.response_format is not None and request.response_format.strict is not None:
            entry["strict"] = request.response_format.strict
        tools.append(entry)
        # With tools of its own the caller keeps them callable ("any": a real tool or the answer);
        # otherwise (or under "none") the answer tool is forced.
        if mode == "tool":
            forced = None
        elif request.tools and mode != "none":
            forced = {"type": "any"}
        else:
            forced = {"type": "tool", "name": answer}
    if not tools:
        return
    body["tools"] = tools
    wire_choice = forced or _tool_choice(mode, choice.name if choice is not None else None)
    if request.parallel_tool_calls is False and wire_choice["type"] != "none":
        wire_choice["disable_parallel_tool_use"] = True
    if choice is not None or forced is not None or len(wire_choice) > 1:
        body["tool_choice"] = wire_choice


def _tool_choice(mode: str, name: str | None) -> dict[str, Any]:
    if mode == "required":
        return {"type": "any"}
    if mode == "tool":
        if not name:
            raise InvalidRequest("tool_choice 'tool' needs a name", param="tool_choice.name")
        return {"type": "tool", "name": name}
    return {"type": mode}


def _schema(request: ChatRequest) -> dict[str, Any]:
    fmt = request.response_format
    schema = fmt.json_schema if fmt is not None else None
    return schema if schema is not None else {"type": "object"}


# -- response --------------------------------------------------------------------------------


class BlockBody(msgspec.Struct, frozen=True):
    """Any content block; fields of types we do not map (server tools) are ignored."""

    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: Any = None
    thinking: str = ""
    signature: str | None = None
    data: str | None = None


class UsageBody(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Message(msgspec.Struct, frozen=True):
    id: str
    model: str
    content: list[BlockBody]
    stop_reason: str | None = None
    usage: UsageBody = UsageBody()


_MESSAGE = msgspec.json.Decoder(_Message)


def decode_chat_response(
    body: bytes,
    *,
    created: int,
    json_tool: str | None = None,
    provider: str = "anthropic",
) -> ChatResponse:
    """A canonical response from a ``message`` body; ``json_tool`` is :func:`answer_tool`'s name."""
    try:
        message = _MESSAGE.decode(body)
    except msgspec.DecodeError as err:
        raise UpstreamError(f"{provider} sent an invalid message: {err}", provider=provider) from err
    parts: list[ContentPart] = []
    called = False
    for block in message.content:
        if block.type == "text" and block.text:
            parts.append(TextPart(text=block.text))
        elif block.type == "thinking":
            parts.append(ReasoningPart(text=block.thinking, signature=block.signature, provider="anthropic"))
        elif block.type == "redacted_thinking":
            parts.append(ReasoningPart(redacted=block.data or "", provider="anthropic"))
        elif block.type == "tool_use" and block.name == json_tool:
            parts.append(TextPart(text=msgspec.json.encode(block.input).decode()))
        elif block.type == "tool_use":
            called = True
            arguments = msgspec.json.encode(block.input if block.input is not None else {}).decode()
            parts.append(ToolCallPart(id=block.id, name=block.name, arguments=arguments))
    return ChatResponse(
        id=message.id,
        model=message.model,
        created=created,
        message=Message(role="assistant", content=tuple(parts)),
        finish_reason=finish_reason(message.stop_reason, called_tools=called),
        usage=decode_usage(message.usage),
        provider=provider,
    )


def finish_reason(stop_reason: str | None, *, called_tools: bool) -> FinishReason | None:
    """Canonical finish reason; a ``tool_use`` stop that only called the answer tool is ``stop``."""
    if stop_reason is None:
        return None
    reason = STOP_REASONS.get(stop_reason, "stop")
    if reason == "tool_calls" and not called_tools:
        return "stop"
    return reason


def message_id(response_id: str) -> str:
    """An Anthropic-looking id (``msg_...``) for a response that may come from another provider."""
    return response_id if response_id.startswith("msg_") else f"msg_{response_id}"


def encode_usage(usage: Usage) -> dict[str, int]:
    """Anthropic's usage object: ``input_tokens`` excludes cache reads and writes, as Anthropic
    reports it."""
    cached = usage.cached_input_tokens + usage.cache_write_input_tokens
    return {
        "input_tokens": max(0, usage.input_tokens - cached),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_input_tokens,
    }


def decode_usage(usage: UsageBody) -> Usage:
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=usage.input_tokens + read + written,
        output_tokens=usage.output_tokens,
        cached_input_tokens=read,
        cache_write_input_tokens=written,
    )
