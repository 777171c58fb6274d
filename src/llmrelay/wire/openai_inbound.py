"""OpenAI Chat Completions codec, server side: a client's request -> canonical -> OpenAI answer.

Pure. The HTTP server decodes ``POST /v1/chat/completions`` bodies with :func:`decode_chat_request`
and the SDK facade accepts OpenAI-style dicts through :func:`decode_messages`,
:func:`decode_tools`, :func:`decode_tool_choice`, :func:`decode_response_format` and checks its
other options with :func:`check_chat_fields`; all raise
:class:`InvalidRequest` with ``param`` naming the offending field (``messages[0].content``), as
OpenAI itself does. Typed msgspec structs do the validation, so the error paths come for free and
decoding stays fast.

Top-level fields the canonical request does not model (``n``, ``logprobs``, ``presence_penalty``,
``metadata``, ``reasoning_effort``, ``service_tier``, ``stream_options``, ...) are kept verbatim in
``extensions["openai"]``: an OpenAI upstream receives them untouched; for other providers
:mod:`llmrelay.wire.foreign_params` decides (a 400 naming them, unless the alias sets
``drop_params``). The decoded request passes :func:`llmrelay.request_rules.validate` (``tool_choice``
needs its tool, ``n`` above 1 is refused).
Gemini's function-call signatures ride on the tool-call ids handed out and come off again here
(:mod:`llmrelay.wire.call_ids`). ``developer`` messages are system messages;
``max_completion_tokens`` wins over ``max_tokens``.
A known ``reasoning_effort`` becomes the canonical ``reasoning`` instead (it maps onto Anthropic's
and Gemini's thinking budgets: :mod:`llmrelay.wire.reasoning`).
"""

from __future__ import annotations

import re
from typing import Any, Literal, TypeAlias, TypeVar

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.request_rules import validate
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from llmrelay.wire.call_ids import split, with_signature
from llmrelay.wire.json_body import decode_json_object as decode_json_object  # re-exported
from llmrelay.wire.json_body import validation_message
from llmrelay.wire.openai import encode_tool_call, encode_usage
from llmrelay.wire.reasoning import decode_effort


class _Part(msgspec.Struct, tag_field="type"):
    pass


class _InText(_Part, tag="text"):
    text: str


class _InImageURL(msgspec.Struct):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class _InImage(_Part, tag="image_url"):
    image_url: _InImageURL


class _InRefusal(_Part, tag="refusal"):
    refusal: str


class _InFunctionCall(msgspec.Struct):
    name: str
    arguments: str = "{}"


class _InToolCall(msgspec.Struct, tag_field="type", tag="function"):
    id: str
    function: _InFunctionCall


class _InMessage(msgspec.Struct, tag_field="role"):
    pass


class _InSystem(_InMessage, tag="system"):
    content: str | list[_InText]
    name: str | None = None


class _InDeveloper(_InMessage, tag="developer"):
    content: str | list[_InText]
    name: str | None = None


class _InUser(_InMessage, tag="user"):
    content: str | list[_InText | _InImage]
    name: str | None = None


class _InAssistant(_InMessage, tag="assistant"):
    content: str | list[_InText | _InRefusal] | None = None
    refusal: str | None = None
    tool_calls: list[_InToolCall] | None = None
    name: str | None = None


class _InToolMessage(_InMessage, tag="tool"):
    content: str | list[_InText]
    tool_call_id: str


_AnyMessage: TypeAlias = _InSystem | _InDeveloper | _InUser | _InAssistant | _InToolMessage


class _InFunctionDef(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _InTool(msgspec.Struct, tag_field="type", tag="function"):
    function: _InFunctionDef


class _InChoiceFunction(msgspec.Struct):
    name: str


class _InNamedChoice(msgspec.Struct, tag_field="type", tag="function"):
    function: _InChoiceFunction


_AnyToolChoice: TypeAlias = Literal["auto", "none", "required"] | _InNamedChoice


class _Format(msgspec.Struct, tag_field="type"):
    pass


class _InFormatText(_Format, tag="text"):
    pass


class _InFormatJsonObject(_Format, tag="json_object"):
    pass


class _InSchema(msgspec.Struct):
    name: str
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class _InFormatJsonSchema(_Format, tag="json_schema"):
    json_schema: _InSchema


_AnyFormat: TypeAlias = _InFormatText | _InFormatJsonObject | _InFormatJsonSchema


class _InRequest(msgspec.Struct):
    model: str
    messages: list[_AnyMessage]
    stream: bool | None = None
    tools: list[_InTool] | None = None
    tool_choice: _AnyToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: _AnyFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None


_KNOWN = frozenset(_InRequest.__struct_fields__)
CHAT_BODY: type[msgspec.Struct] = _InRequest
"""The fields of a chat request body this codec reads (the server's ``/openapi.json`` is made from it)."""
_T = TypeVar("_T")


def decode_chat_request(body: bytes) -> ChatRequest:
    """A ``POST /v1/chat/completions`` body as a :class:`ChatRequest` (``model`` is the alias)."""
    raw = decode_json_object(body)
    wire = convert_inbound({k: v for k, v in raw.items() if k in _KNOWN}, _InRequest, root="")
    if not wire.messages:
        raise InvalidRequest("`messages` must hold at least one message", param="messages")
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
    reasoning = decode_effort(extra.get("reasoning_effort"))
    if reasoning is not None:
        del extra["reasoning_effort"]
    max_tokens = wire.max_completion_tokens if wire.max_completion_tokens is not None else wire.max_tokens
    request = ChatRequest(
        model=wire.model,
        messages=_messages(wire.messages),
        stream=bool(wire.stream),
        tools=tuple(_tool(t) for t in wire.tools or ()),
        tool_choice=_tool_choice(wire.tool_choice) if wire.tool_choice is not None else None,
        parallel_tool_calls=wire.parallel_tool_calls,
        response_format=_format(wire.response_format) if wire.response_format is not None else None,
        temperature=wire.temperature,
        top_p=wire.top_p,
        max_tokens=max_tokens,
        stop=(wire.stop,) if isinstance(wire.stop, str) else tuple(wire.stop or ()),
        seed=wire.seed,
        user=wire.user,
        reasoning=reasoning,
        extensions={"openai": extra} if extra else {},
    )
    return validate(request)


def check_chat_fields(fields: dict[str, Any]) -> None:
    """Validate top-level request fields given without a body (the SDK's keyword arguments) with
    the very types :func:`decode_chat_request` uses, so one mistake is one error in both faces."""
    convert_inbound({"model": "", "messages": [], **fields}, _InRequest, root="")


def stream_include_usage(request: ChatRequest) -> bool:
    """Whether the client asked for the usage chunk (``stream_options.include_usage``)."""
    options = request.extension("openai").get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def decode_messages(value: Any) -> tuple[Message, ...]:
    """OpenAI-style message dicts as canonical messages (errors name ``messages[i]...``)."""
    return _messages(convert_inbound(value, list[_AnyMessage], root="messages"))


def decode_tools(value: Any) -> tuple[Tool, ...]:
    return tuple(_tool(t) for t in convert_inbound(value, list[_InTool], root="tools"))


def decode_tool_choice(value: Any) -> ToolChoice:
    return _tool_choice(convert_inbound(value, _AnyToolChoice, root="tool_choice"))  # type: ignore[arg-type]


def decode_response_format(value: Any) -> ResponseFormat:
    return _format(convert_inbound(value, _AnyFormat, root="response_format"))  # type: ignore[arg-type]


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(?P<field>[^`]+)`")


def convert_inbound(value: Any, kind: type[_T], *, root: str) -> _T:
    """``value`` as ``kind``, or :class:`InvalidRequest` whose ``param`` is the failing path."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as err:
        text = validation_message(err)
        at = _AT.search(text)
        path = root + (at.group("path") if at else "")
        missing = _MISSING.search(text)
        if missing:
            path += "." + missing.group("field")
        param = path.lstrip(".") or None
        detail = text[: at.start()] if at else text
        where = f" at `{param}`" if param else ""
        raise InvalidRequest(f"invalid request{where}: {detail}", param=param) from err


def _messages(wire: list[_AnyMessage]) -> tuple[Message, ...]:
    names: dict[str, str] = {}  # tool call id -> function name, so tool results carry it (Gemini)
    out: list[Message] = []
    for m in wire:
        if isinstance(m, _InSystem | _InDeveloper):
            out.append(Message(role="system", content=_texts(m.content), name=m.name))
        elif isinstance(m, _InUser):
            out.append(Message(role="user", content=_user_parts(m.content), name=m.name))
        elif isinstance(m, _InAssistant):
            parts: list[ContentPart] = []
            text = _text(m.content) + (m.refusal or "")
            if text:
                parts.append(TextPart(text=text))
            for call in m.tool_calls or ():
                call_id, meta = split(call.id)
                names[call_id] = call.function.name
                parts.append(
                    ToolCallPart(
                        id=call_id, name=call.function.name, arguments=call.function.arguments, meta=meta
                    )
                )
            out.append(Message(role="assistant", content=tuple(parts), name=m.name))
        else:
            call_id, _ = split(m.tool_call_id)
            result = ToolResultPart(tool_call_id=call_id, content=_text(m.content), name=names.get(call_id))
            out.append(Message(role="tool", content=(result,)))
    return tuple(out)


def _text(content: str | list[_InText] | list[_InText | _InRefusal] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(p.text if isinstance(p, _InText) else p.refusal for p in content)


def _texts(content: str | list[_InText]) -> tuple[ContentPart, ...]:
    return (TextPart(text=_text(content)),)


def _user_parts(content: str | list[_InText | _InImage]) -> tuple[ContentPart, ...]:
    if isinstance(content, str):
        return (TextPart(text=content),)
    return tuple(
        TextPart(text=p.text)
        if isinstance(p, _InText)
        else ImagePart(url=p.image_url.url, detail=p.image_url.detail)
        for p in content
    )


def _tool(wire: _InTool) -> Tool:
    f = wire.function
    if f.parameters is None:
        return Tool(name=f.name, description=f.description, strict=f.strict)
    return Tool(name=f.name, description=f.description, parameters=f.parameters, strict=f.strict)


def _tool_choice(wire: _AnyToolChoice) -> ToolChoice:
    if isinstance(wire, _InNamedChoice):
        return ToolChoice(mode="tool", name=wire.function.name)
    return ToolChoice(mode=wire)


def _format(wire: _AnyFormat) -> ResponseFormat:
    if isinstance(wire, _InFormatJsonSchema):
        spec = wire.json_schema
        return ResponseFormat(type="json_schema", name=spec.name, json_schema=spec.schema, strict=spec.strict)
    return ResponseFormat(type="json_object" if isinstance(wire, _InFormatJsonObject) else "text")


def encode_chat_response(response: ChatResponse, *, model: str | None = None) -> dict[str, Any]:
    """A ``chat.completion`` object (``CreateChatCompletionResponse``); ``model`` renames it."""
    text = response.text
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not response.tool_calls else None,
        "refusal": None,
    }
    if response.tool_calls:
        message["tool_calls"] = [
            encode_tool_call(msgspec.structs.replace(call, id=with_signature(call.id, call.meta)))
            for call in response.tool_calls
        ]
    return {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created,
        "model": model or response.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": response.finish_reason or "stop",
            }
        ],
        "usage": encode_usage(response.usage),
    }
