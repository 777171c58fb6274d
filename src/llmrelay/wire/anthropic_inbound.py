"""The server's Anthropic face: ``/v1/messages`` requests in, Anthropic message bodies out.

Pure. Any Anthropic client can talk to llmrelay: :func:`decode_messages_request` turns its request
into the canonical :class:`ChatRequest` (the pipeline then routes it to any provider), and
:func:`encode_messages_response` renders the canonical answer as Anthropic's ``message``. Streams
are encoded by :class:`~llmrelay.wire.anthropic_stream.AnthropicStreamEncoder`, errors by
:func:`~llmrelay.wire.anthropic_errors.encode_error`.

Validation uses typed msgspec structs, so a malformed request fails with msgspec's exact path, which
becomes the error's ``param`` (``messages[0].content[1].source``). Top-level fields without a
canonical meaning (``top_k``, ``thinking``, ``output_config``, ...) are kept in
``extensions["anthropic"]`` and merged back when the target is Anthropic (another target answers
400 naming them unless the alias sets ``drop_params``: :mod:`llmrelay.wire.foreign_params`); the
decoded request passes :func:`llmrelay.request_rules.validate`. Tool results, which
Anthropic puts in user messages, become canonical ``role="tool"`` messages (one per result, before
the rest of that user turn); images inside a tool result follow them as user content, because
canonical tool results are text. Thinking and redacted-thinking blocks in the history become
:class:`~llmrelay.types.ReasoningPart` values (signature or data unchanged), and a block's
``cache_control`` goes into its part's ``meta["anthropic"]``, so both reach an Anthropic target as
the client sent them. ``thinking`` of the plain enabled shape becomes the canonical ``reasoning``
(:mod:`llmrelay.wire.reasoning`), so it maps onto the other providers' thinking knobs. Gemini's
function-call signatures ride on the ``tool_use`` ids (:mod:`llmrelay.wire.call_ids`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.request_rules import validate
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    ImagePart,
    Message,
    PartMeta,
    ReasoningPart,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    text_message,
)
from llmrelay.wire.anthropic import STOP_REASONS_OUT, encode_usage, message_id
from llmrelay.wire.anthropic_blocks import encode_reasoning
from llmrelay.wire.call_ids import split, with_signature
from llmrelay.wire.json_body import decode_json_object, validation_message
from llmrelay.wire.reasoning import decode_anthropic_thinking


class _Tagged(msgspec.Struct, tag_field="type"):
    """Wire blocks told apart by their ``type`` field (decode-only, so not frozen)."""


class _Block(_Tagged, kw_only=True):
    """A content block; ``cache_control`` may sit on any of them (prompt caching)."""

    cache_control: dict[str, Any] | None = None


class _Text(_Block, tag="text"):
    text: str


class _Base64(_Tagged, tag="base64"):
    media_type: str
    data: str


class _Url(_Tagged, tag="url"):
    url: str


class _Image(_Block, tag="image"):
    source: _Base64 | _Url


class _ToolUse(_Block, tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]


class _ToolResult(_Block, tag="tool_result"):
    tool_use_id: str
    content: str | list[_Text | _Image] = ""
    is_error: bool = False


class _Thinking(_Block, tag="thinking"):
    thinking: str
    signature: str | None = None


class _RedactedThinking(_Block, tag="redacted_thinking"):
    data: str


_AnyBlock = _Text | _Image | _ToolUse | _ToolResult | _Thinking | _RedactedThinking


class _Message(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str | list[_AnyBlock]


class _Tool(msgspec.Struct, frozen=True):
    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None


class _Auto(_Tagged, tag="auto"):
    disable_parallel_tool_use: bool = False


class _Any(_Tagged, tag="any"):
    disable_parallel_tool_use: bool = False


class _Named(_Tagged, tag="tool"):
    name: str
    disable_parallel_tool_use: bool = False


class _NoTool(_Tagged, tag="none"):
    pass


class _Metadata(msgspec.Struct, frozen=True):
    user_id: str | None = None


class _Body(msgspec.Struct, frozen=True):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    max_tokens: Annotated[int, msgspec.Meta(ge=0)]
    messages: Annotated[list[_Message], msgspec.Meta(min_length=1)]
    system: str | list[_Text] | None = None
    stop_sequences: list[str] = []
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    metadata: _Metadata | None = None
    tools: list[_Tool] = []
    tool_choice: _Auto | _Any | _Named | _NoTool | None = None


_KNOWN = frozenset(_Body.__struct_fields__)
MESSAGES_BODY: type[msgspec.Struct] = _Body
"""The fields of a messages request body this codec reads (the server's ``/openapi.json`` is made from it)."""
_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")


def decode_messages_request(body: bytes) -> ChatRequest:
    """Decode a ``POST /v1/messages`` body; raise :class:`InvalidRequest` naming the bad field."""
    return decode_messages_object(decode_json_object(body))


def decode_messages_object(raw: dict[str, Any]) -> ChatRequest:
    """:func:`decode_messages_request` for a body already parsed (``count_tokens`` fills in the
    ``max_tokens`` its bodies leave out)."""
    try:
        request = msgspec.convert(raw, _Body)
    except msgspec.ValidationError as err:
        text = validation_message(err)
        raise InvalidRequest(text, param=_param(text)) from err
    extras = {k: v for k, v in raw.items() if k not in _KNOWN}
    reasoning = decode_anthropic_thinking(extras.get("thinking"))
    if reasoning is not None:
        del extras["thinking"]
    choice, parallel = _tool_choice(request.tool_choice)
    canonical = ChatRequest(
        model=request.model,
        messages=_system(request.system) + _messages(request.messages),
        stream=request.stream,
        tools=tuple(
            Tool(
                name=t.name,
                description=t.description,
                parameters=t.input_schema,
                strict=t.strict,
                meta={"anthropic": {"cache_control": t.cache_control}} if t.cache_control else None,
            )
            for t in request.tools
        ),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        temperature=request.temperature,
        top_p=request.top_p,
        max_tokens=request.max_tokens,
        stop=tuple(request.stop_sequences),
        user=request.metadata.user_id if request.metadata is not None else None,
        reasoning=reasoning,
        extensions={"anthropic": extras} if extras else {},
    )
    return validate(canonical)


def _param(message: str) -> str | None:
    """The field a msgspec error names, as a dotted path without ``$.``."""
    at = _AT.search(message)
    path = at.group(1) if at else ""
    missing = _MISSING.match(message)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
    return path or None


def _system(system: str | list[_Text] | None) -> tuple[Message, ...]:
    if system is None or system == "":
        return ()
    if isinstance(system, str):
        return (text_message("system", system),)
    return tuple(
        Message(role="system", content=(TextPart(text=block.text, meta=_meta(block)),)) for block in system
    )


def _meta(block: _Block) -> PartMeta | None:
    return {"anthropic": {"cache_control": block.cache_control}} if block.cache_control else None


def _messages(messages: list[_Message]) -> tuple[Message, ...]:
    out: list[Message] = []
    for i, message in enumerate(messages):
        if isinstance(message.content, str):
            out.append(text_message(message.role, message.content))
            continue
        parts: list[ContentPart] = []
        for j, block in enumerate(message.content):
            where = f"messages[{i}].content[{j}]"
            if isinstance(block, _Text):
                parts.append(TextPart(text=block.text, meta=_meta(block)))
            elif isinstance(block, _Image):
                parts.append(_image(block))
            elif isinstance(block, _Thinking | _RedactedThinking):
                _expect(message.role == "assistant", "thinking blocks belong to assistant", where)
                parts.append(_reasoning(block))
            elif isinstance(block, _ToolUse):
                _expect(message.role == "assistant", "tool_use blocks belong to assistant", where)
                arguments = msgspec.json.encode(block.input).decode()
                call_id, signed = split(block.id)
                meta = _meta(block) or {}
                meta = {**meta, **signed} if signed else meta
                parts.append(
                    ToolCallPart(id=call_id, name=block.name, arguments=arguments, meta=meta or None)
                )
            elif isinstance(block, _ToolResult):
                _expect(message.role == "user", "tool_result blocks belong to user", where)
                out.append(Message(role="tool", content=(_tool_result(block),)))
                if not isinstance(block.content, str):
                    parts.extend(_image(b) for b in block.content if isinstance(b, _Image))
        if parts:
            out.append(Message(role=message.role, content=tuple(parts)))
    return tuple(out)


def _expect(condition: bool, message: str, where: str) -> None:
    if not condition:
        raise InvalidRequest(f"{message} messages", param=f"{where}.type")


def _reasoning(block: _Thinking | _RedactedThinking) -> ReasoningPart:
    if isinstance(block, _RedactedThinking):
        return ReasoningPart(redacted=block.data, provider="anthropic", meta=_meta(block))
    return ReasoningPart(
        text=block.thinking, signature=block.signature, provider="anthropic", meta=_meta(block)
    )


def _image(block: _Image) -> ImagePart:
    source = block.source
    if isinstance(source, _Url):
        return ImagePart(url=source.url, meta=_meta(block))
    return ImagePart(url=f"data:{source.media_type};base64,{source.data}", meta=_meta(block))


def _tool_result(block: _ToolResult) -> ToolResultPart:
    if isinstance(block.content, str):
        text = block.content
    else:
        text = "\n".join(b.text for b in block.content if isinstance(b, _Text))
    return ToolResultPart(
        tool_call_id=split(block.tool_use_id)[0], content=text, is_error=block.is_error, meta=_meta(block)
    )


def _tool_choice(
    choice: _Auto | _Any | _Named | _NoTool | None,
) -> tuple[ToolChoice | None, bool | None]:
    """The canonical choice, and ``parallel_tool_calls=False`` when parallel use is disabled."""
    if choice is None:
        return None, None
    if isinstance(choice, _NoTool):
        return ToolChoice(mode="none"), None
    parallel = False if choice.disable_parallel_tool_use else None
    if isinstance(choice, _Named):
        return ToolChoice(mode="tool", name=choice.name), parallel
    return ToolChoice(mode="required" if isinstance(choice, _Any) else "auto"), parallel


def encode_messages_response(response: ChatResponse) -> dict[str, Any]:
    """Anthropic's ``message`` body for a canonical response (from any provider)."""
    content: list[dict[str, Any]] = []
    for part in response.message.content:
        if isinstance(part, TextPart) and part.text:
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ReasoningPart):
            thinking = encode_reasoning(part)
            if thinking is not None:
                content.append(thinking)
        elif isinstance(part, ToolCallPart):
            block = {"type": "tool_use", "id": with_signature(part.id, part.meta), "name": part.name}
            content.append(block | {"input": _arguments(part.arguments)})
    reason = response.finish_reason
    return {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": STOP_REASONS_OUT[reason] if reason is not None else None,
        "stop_sequence": None,
        "usage": encode_usage(response.usage),
    }


def _arguments(arguments: str) -> dict[str, Any]:
    """Tool arguments as Anthropic's ``input`` object.

    Arguments that are not a JSON object only come from a call cut short (``max_tokens``); the
    ``stop_reason`` already says so, and Anthropic's shape has no place for invalid JSON.
    """
    try:
        value = msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}
