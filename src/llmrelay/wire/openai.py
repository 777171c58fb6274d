"""OpenAI Chat Completions codec, upstream side: canonical request -> body -> canonical response.

Pure: no I/O, no clock. One format covers api.openai.com and every OpenAI-compatible server
(vLLM, Ollama, llama.cpp, Groq, Together, Mistral, DeepSeek, OpenRouter), so decoding is lenient
where those servers differ (``null`` for absent fields, float ``created``, content as a parts
array, no ``id``) and strict only where a wrong guess would corrupt an answer. Siblings:
``openai_stream`` (SSE chunks, both directions), ``openai_errors`` (error bodies, both directions),
``openai_inbound`` (the server side: OpenAI request -> canonical, canonical answer -> OpenAI) and
``openai_embeddings``.

``max_tokens`` vs ``max_completion_tokens``: api.openai.com's reasoning models (o-series, gpt-5)
reject ``max_tokens``, while many compatible servers only know ``max_tokens``. The encoder takes the
field name as ``max_tokens_field``; the provider chooses it (``max_completion_tokens`` for
api.openai.com, ``max_tokens`` elsewhere, overridable with the ``max_tokens_param`` option).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, TypeAlias

import msgspec

from llmrelay.errors import UpstreamError
from llmrelay.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    ImagePart,
    Message,
    ReasoningPart,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from llmrelay.wire.reasoning import effort as reasoning_effort

MaxTokensField: TypeAlias = Literal["max_tokens", "max_completion_tokens"]

# Body keys the codec owns: an extension must not redirect the model, replace the conversation, or
# switch streaming (a client's ``stream_options`` is the server's concern, not the upstream's).
_RESERVED = frozenset({"model", "messages", "stream", "stream_options"})

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the deprecated single-function form
    "content_filter": "content_filter",
}


def encode_chat_request(
    request: ChatRequest,
    *,
    model: str,
    max_tokens_field: MaxTokensField = "max_tokens",
    stream_usage: bool = True,
) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``.

    ``model`` is the target's model (``request.model`` is still the caller's alias).
    ``stream_usage`` asks for the final usage chunk on streams (``stream_options.include_usage``);
    a few old compatible servers reject ``stream_options``, hence the switch. Canonical
    ``reasoning`` goes out as ``reasoning_effort``; reasoning parts in the history are left out
    (Chat Completions has no place for them). The ``openai`` extension namespace is merged last,
    so unmodelled parameters (``n``, ``logprobs``, ``service_tier``, ...) reach the upstream
    untouched.
    """
    body: dict[str, Any] = {"model": model, "messages": encode_messages(request.messages)}
    if request.tools:
        body["tools"] = [_encode_tool(tool) for tool in request.tools]
        if request.parallel_tool_calls is not None:
            # OpenAI rejects parallel_tool_calls without tools, so it only travels with them.
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.tool_choice is not None:
        body["tool_choice"] = encode_tool_choice(request.tool_choice)
    if request.response_format is not None:
        body["response_format"] = encode_response_format(request.response_format)
    for key in ("temperature", "top_p", "seed", "user"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.reasoning is not None:
        body["reasoning_effort"] = reasoning_effort(request.reasoning)
    if request.stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    for key, value in request.extension("openai").items():
        if key not in _RESERVED:
            body[key] = value
    return body


def encode_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Canonical messages as OpenAI messages; one tool message per :class:`ToolResultPart`."""
    return [encoded for message in messages for encoded in _encode_message(message)]


def _encode_message(message: Message) -> Iterator[dict[str, Any]]:
    others: list[ContentPart] = []
    for part in message.content:
        if isinstance(part, ToolResultPart):
            yield {"role": "tool", "tool_call_id": part.tool_call_id, "content": part.content}
        elif not isinstance(part, ReasoningPart):
            others.append(part)
    if message.role == "tool" or (not others and message.content):
        return  # tool results only: nothing else to send for this turn
    out: dict[str, Any] = {"role": message.role}
    if message.name is not None:
        out["name"] = message.name
    calls = [p for p in others if isinstance(p, ToolCallPart)]
    if message.role == "assistant":
        text = "".join(p.text for p in others if isinstance(p, TextPart))
        out["content"] = text if text or not calls else None
        if calls:
            out["tool_calls"] = [encode_tool_call(call) for call in calls]
    else:
        out["content"] = _encode_content([p for p in others if not isinstance(p, ToolCallPart)])
    yield out


def _encode_content(parts: list[ContentPart]) -> str | list[dict[str, Any]]:
    """A plain string when the message is text only (every compatible server accepts that)."""
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    encoded: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            encoded.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            image: dict[str, Any] = {"url": part.url}
            if part.detail is not None:
                image["detail"] = part.detail
            encoded.append({"type": "image_url", "image_url": image})
    return encoded


def encode_tool_call(call: ToolCallPart) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _encode_tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def encode_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool" and choice.name is not None:
        return {"type": "function", "function": {"name": choice.name}}
    return "required" if choice.mode == "tool" else choice.mode


def encode_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    schema: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.json_schema or {}}
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": schema}


# --- response -------------------------------------------------------------------------------------


class WireFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _WireToolCall(msgspec.Struct):
    id: str | None = None
    function: WireFunction | None = None


class _WirePart(msgspec.Struct):
    """A content part of an answer; Mistral's reasoning models answer with a parts array."""

    type: str = ""
    text: str | None = None


class _WireMessage(msgspec.Struct):
    content: str | list[_WirePart] | None = None
    refusal: str | None = None
    tool_calls: list[_WireToolCall] | None = None
    function_call: WireFunction | None = None


class _WireChoice(msgspec.Struct):
    index: int = 0
    message: _WireMessage | None = None
    finish_reason: str | None = None


class _TokenDetails(msgspec.Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class WireUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _TokenDetails | None = None
    completion_tokens_details: _TokenDetails | None = None


class _WireCompletion(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    created: float | None = None
    choices: list[_WireChoice] | None = None
    usage: WireUsage | None = None


_completion_decoder = msgspec.json.Decoder(_WireCompletion)


def decode_chat_response(
    body: bytes, *, provider: str = "openai", model: str = "", created: int = 0
) -> ChatResponse:
    """A ``chat.completion`` body as a :class:`ChatResponse` (the first choice).

    ``model`` and ``created`` fill in for servers that omit them. A refusal (structured outputs)
    becomes the answer's text, so callers see why there is no JSON. A body that is not a chat
    completion is the upstream's fault: :class:`UpstreamError`.
    """
    try:
        wire = _completion_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise UpstreamError(
            f"{provider} returned a malformed chat completion: {err}", provider=provider
        ) from err
    choice = next((c for c in wire.choices or () if c.index == 0), None)
    if choice is None:
        raise UpstreamError(f"{provider} returned a chat completion without choices", provider=provider)
    message = choice.message or _WireMessage()
    parts: list[ContentPart] = []
    text = _content_text(message.content) or message.refusal
    if text:
        parts.append(TextPart(text=text))
    for i, call in enumerate(message.tool_calls or ()):
        function = call.function or WireFunction()
        parts.append(
            ToolCallPart(
                id=call.id or f"call_{i}",
                name=function.name or "",
                arguments=function.arguments or "{}",
            )
        )
    if message.function_call is not None and not message.tool_calls:
        legacy = message.function_call
        parts.append(ToolCallPart(id="call_0", name=legacy.name or "", arguments=legacy.arguments or "{}"))
    return ChatResponse(
        id=wire.id or "",
        model=wire.model or model,
        created=int(wire.created) if wire.created is not None else created,
        message=Message(role="assistant", content=tuple(parts)),
        finish_reason=decode_finish_reason(choice.finish_reason),
        usage=decode_usage(wire.usage),
        provider=provider,
    )


def _content_text(content: str | list[_WirePart] | None) -> str:
    if isinstance(content, list):
        return "".join(p.text or "" for p in content if p.type == "text")
    return content or ""


def decode_finish_reason(value: str | None) -> FinishReason | None:
    """OpenAI's reasons map one to one; unknown ones from compatible servers (``eos``) mean stop."""
    if value is None:
        return None
    return _FINISH.get(value, "stop")


def decode_usage(usage: WireUsage | None) -> Usage:
    if usage is None:
        return Usage()
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=(prompt.cached_tokens or 0) if prompt else 0,
        reasoning_tokens=(completion.reasoning_tokens or 0) if completion else 0,
    )


def encode_usage(usage: Usage) -> dict[str, Any]:
    """``CompletionUsage`` as OpenAI reports it, details included."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
