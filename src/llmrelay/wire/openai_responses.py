"""OpenAI Responses API codec, server side: a ``POST /v1/responses`` body -> canonical -> a Response.

Pure. :func:`decode_responses_request` turns the body into a :class:`ResponsesCall`: the canonical
:class:`ChatRequest` any provider can serve (``instructions`` as a leading system message, then the
``input``), plus what the Responses face needs besides (``previous_response_id``, ``store``, and the
request parameters a Response object repeats back). The answer side is
:mod:`llmrelay.wire.openai_responses_output` (the Response object) and
:mod:`llmrelay.wire.openai_responses_stream` (its events).

Input items: messages (``user``, ``assistant``, ``system``, ``developer``; a string or
``input_text`` / ``input_image`` / ``output_text`` / ``refusal`` parts), ``function_call`` and
``function_call_output``. Consecutive function calls join the assistant turn before them, as the
canonical types keep one assistant message per turn. Tools are ``function`` tools; ``text.format``
is ``text``, ``json_object`` or ``json_schema``. Every error is an :class:`InvalidRequest` naming
the offending field (``input[2].content[0].type``); a parameter this face does not model is refused
by name rather than ignored, except for the few that only tune OpenAI's own service
(:data:`_IGNORED`). Gemini's call signatures ride on the ``call_id`` handed out, as on the other
faces (:mod:`llmrelay.wire.call_ids`). See docs/architecture.md §7.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.request_rules import validate
from llmrelay.types import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from llmrelay.wire.call_ids import split
from llmrelay.wire.json_body import decode_json_object
from llmrelay.wire.openai_inbound import convert_inbound
from llmrelay.wire.reasoning import decode_effort


class _Part(msgspec.Struct, tag_field="type"):
    pass


class _InputText(_Part, tag="input_text"):
    text: str


class _InputImage(_Part, tag="input_image"):
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class _OutputText(_Part, tag="output_text"):
    text: str


class _Refusal(_Part, tag="refusal"):
    refusal: str


_AnyPart: TypeAlias = _InputText | _InputImage | _OutputText | _Refusal


class _Item(msgspec.Struct, tag_field="type"):
    pass


class _MessageItem(_Item, tag="message"):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[_AnyPart]


class _FunctionCallItem(_Item, tag="function_call"):
    call_id: str
    name: str
    arguments: str = "{}"


class _FunctionCallOutputItem(_Item, tag="function_call_output"):
    call_id: str
    output: str | list[_InputText]


_AnyItem: TypeAlias = _MessageItem | _FunctionCallItem | _FunctionCallOutputItem


class _FunctionTool(msgspec.Struct, tag_field="type", tag="function"):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _ChoiceFunction(msgspec.Struct, tag_field="type", tag="function"):
    name: str


class _Format(msgspec.Struct, tag_field="type"):
    pass


class _FormatText(_Format, tag="text"):
    pass


class _FormatJsonObject(_Format, tag="json_object"):
    pass


class _FormatJsonSchema(_Format, tag="json_schema"):
    name: str
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


class _Text(msgspec.Struct):
    format: _FormatText | _FormatJsonObject | _FormatJsonSchema | None = None


class _Reasoning(msgspec.Struct):
    effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    summary: str | None = None


class _InRequest(msgspec.Struct):
    model: str
    input: str | list[_AnyItem]
    instructions: str | None = None
    tools: list[_FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | _ChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    text: _Text | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_output_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stream: bool | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    reasoning: _Reasoning | None = None
    background: Literal[False] | None = None  # a background (polled) response is not offered


_KNOWN = frozenset(_InRequest.__struct_fields__)
RESPONSES_BODY: type[msgspec.Struct] = _InRequest
"""The request body's type, for the server's OpenAPI description."""
_IGNORED = frozenset(
    {"include", "truncation", "service_tier", "safety_identifier", "prompt_cache_key", "stream_options"}
)
"""Parameters that tune OpenAI's own service (what to include, truncation, tiers, cache keys):
accepted so that SDK defaults pass, with no effect on another provider."""


class ResponsesCall(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded ``POST /v1/responses``: the canonical request and the face's own fields.

    ``request`` holds the ``instructions`` (as a system message, when given) and then ``input``;
    a stored conversation named by ``previous_response_id`` goes between them
    (:func:`with_history`). ``echo`` is what the Response object repeats of the request.
    """

    request: ChatRequest
    input: tuple[Message, ...]
    instructions: str | None
    previous_response_id: str | None
    store: bool
    echo: dict[str, Any]


def decode_responses_request(body: bytes) -> ResponsesCall:
    """A ``POST /v1/responses`` body as a :class:`ResponsesCall` (``model`` is the alias)."""
    raw = decode_json_object(body)
    for key in raw:
        if key not in _KNOWN and key not in _IGNORED:
            raise InvalidRequest(f"Unknown parameter: '{key}'.", param=key)
    if isinstance(raw.get("input"), list):
        # A message item may leave out its type; the tagged union needs it.
        raw["input"] = [
            {"type": "message", **item} if isinstance(item, dict) and "type" not in item else item
            for item in raw["input"]
        ]
    wire = convert_inbound({k: v for k, v in raw.items() if k in _KNOWN}, _InRequest, root="")
    if wire.input == [] or wire.input == "":
        raise InvalidRequest("`input` must not be empty", param="input")
    items = _items(wire.input)
    system = (
        (Message(role="system", content=(TextPart(text=wire.instructions),)),) if wire.instructions else ()
    )
    fmt = wire.text.format if wire.text is not None else None
    request = ChatRequest(
        model=wire.model,
        messages=link_tool_results(system + items),
        stream=bool(wire.stream),
        tools=tuple(_tool(t) for t in wire.tools or ()),
        tool_choice=_tool_choice(wire.tool_choice) if wire.tool_choice is not None else None,
        parallel_tool_calls=wire.parallel_tool_calls,
        response_format=_format(fmt) if fmt is not None else None,
        temperature=wire.temperature,
        top_p=wire.top_p,
        max_tokens=wire.max_output_tokens,
        user=wire.user,
        reasoning=decode_effort(wire.reasoning.effort) if wire.reasoning is not None else None,
    )
    return ResponsesCall(
        request=validate(request),
        input=items,
        instructions=wire.instructions,
        previous_response_id=wire.previous_response_id,
        store=wire.store is not False,
        echo=_echo(wire, raw),
    )


def with_history(call: ResponsesCall, history: tuple[Message, ...]) -> ChatRequest:
    """The call's request with a stored conversation between its instructions and its input."""
    system = call.request.messages[: len(call.request.messages) - len(call.input)]
    messages = link_tool_results(system + history + call.input)
    return validate(msgspec.structs.replace(call.request, messages=messages))


def link_tool_results(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """Tool results named after the call they answer (Gemini needs the function's name)."""
    names: dict[str, str] = {}
    out: list[Message] = []
    for message in messages:
        for part in message.content:
            if isinstance(part, ToolCallPart):
                names[part.id] = part.name
        if message.role == "tool" and any(
            isinstance(p, ToolResultPart) and p.name is None and p.tool_call_id in names
            for p in message.content
        ):
            message = msgspec.structs.replace(
                message,
                content=tuple(
                    msgspec.structs.replace(p, name=names[p.tool_call_id])
                    if isinstance(p, ToolResultPart) and p.name is None and p.tool_call_id in names
                    else p
                    for p in message.content
                ),
            )
        out.append(message)
    return tuple(out)


def _items(value: str | list[_AnyItem]) -> tuple[Message, ...]:
    if isinstance(value, str):
        return (Message(role="user", content=(TextPart(text=value),)),)
    out: list[Message] = []
    for i, item in enumerate(value):
        if isinstance(item, _MessageItem):
            role: Role = "system" if item.role == "developer" else item.role
            out.append(Message(role=role, content=_parts(item.content, f"input[{i}].content")))
        elif isinstance(item, _FunctionCallItem):
            call_id, meta = split(item.call_id)
            call = ToolCallPart(id=call_id, name=item.name, arguments=item.arguments, meta=meta)
            if out and out[-1].role == "assistant":
                out[-1] = msgspec.structs.replace(out[-1], content=(*out[-1].content, call))
            else:
                out.append(Message(role="assistant", content=(call,)))
        else:
            call_id, _ = split(item.call_id)
            text = item.output if isinstance(item.output, str) else "".join(p.text for p in item.output)
            out.append(Message(role="tool", content=(ToolResultPart(tool_call_id=call_id, content=text),)))
    return tuple(out)


def _parts(content: str | list[_AnyPart], where: str) -> tuple[ContentPart, ...]:
    if isinstance(content, str):
        return (TextPart(text=content),)
    parts: list[ContentPart] = []
    for j, part in enumerate(content):
        if isinstance(part, _InputImage):
            if part.image_url is None:
                raise InvalidRequest(
                    "an `input_image` needs `image_url` (an https or data URL); file ids are not supported",
                    param=f"{where}[{j}].image_url",
                )
            parts.append(ImagePart(url=part.image_url, detail=part.detail))
        else:
            parts.append(TextPart(text=part.refusal if isinstance(part, _Refusal) else part.text))
    return tuple(parts)


def _tool(wire: _FunctionTool) -> Tool:
    if wire.parameters is None:
        return Tool(name=wire.name, description=wire.description, strict=wire.strict)
    return Tool(name=wire.name, description=wire.description, parameters=wire.parameters, strict=wire.strict)


def _tool_choice(wire: Literal["auto", "none", "required"] | _ChoiceFunction) -> ToolChoice:
    if isinstance(wire, _ChoiceFunction):
        return ToolChoice(mode="tool", name=wire.name)
    return ToolChoice(mode=wire)


def _format(wire: _FormatText | _FormatJsonObject | _FormatJsonSchema) -> ResponseFormat:
    if isinstance(wire, _FormatJsonSchema):
        return ResponseFormat(type="json_schema", name=wire.name, json_schema=wire.schema, strict=wire.strict)
    return ResponseFormat(type="json_object" if isinstance(wire, _FormatJsonObject) else "text")


def _echo(wire: _InRequest, raw: dict[str, Any]) -> dict[str, Any]:
    """The request parameters a Response object repeats, with OpenAI's defaults filled in."""
    text = raw.get("text") if isinstance(raw.get("text"), dict) else {}
    echo: dict[str, Any] = {
        "instructions": wire.instructions,
        "max_output_tokens": wire.max_output_tokens,
        "metadata": wire.metadata or {},
        "parallel_tool_calls": wire.parallel_tool_calls is not False,
        "previous_response_id": wire.previous_response_id,
        "reasoning": {"effort": wire.reasoning.effort, "summary": None} if wire.reasoning else None,
        "store": wire.store is not False,
        "temperature": 1.0 if wire.temperature is None else wire.temperature,
        "text": {"format": (text or {}).get("format") or {"type": "text"}},
        "tool_choice": raw.get("tool_choice") or "auto",
        "tools": [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": t.strict,
            }
            for t in wire.tools or ()
        ],
        "top_p": 1.0 if wire.top_p is None else wire.top_p,
        "truncation": "disabled",
    }
    if wire.user is not None:
        echo["user"] = wire.user
    return echo
