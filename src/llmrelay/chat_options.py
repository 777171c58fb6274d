"""The arguments of :meth:`Relay.chat <llmrelay.relay.Relay.chat>` and ``stream``, turned into a
canonical :class:`~llmrelay.types.ChatRequest`.

Messages, tools, tool choice and response format may be canonical values or the OpenAI-style dicts
most code already has; dicts are decoded once, with the same codec the server uses, and the other
options are checked with the server's own types, so a mistake gets the same precise
:class:`~llmrelay.errors.InvalidRequest` in both faces. An option that does not exist is a
``TypeError``, as for any Python function.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypedDict

from msgspec import Meta

from llmrelay.errors import InvalidRequest
from llmrelay.request_rules import validate
from llmrelay.types import ChatRequest, Message, Reasoning, ResponseFormat, Tool, ToolChoice
from llmrelay.wire import openai_inbound as openai_wire

MessageInput = Message | Mapping[str, Any]


class ChatOptions(TypedDict, total=False):
    """Optional arguments of :meth:`Relay.chat` and :meth:`Relay.stream`."""

    tools: Sequence[Tool | Mapping[str, Any]]
    tool_choice: ToolChoice | str | Mapping[str, Any]
    parallel_tool_calls: bool
    response_format: ResponseFormat | Mapping[str, Any]
    temperature: float
    top_p: float
    max_tokens: int
    stop: str | Sequence[str]
    seed: int
    user: str
    reasoning: Reasoning
    """How much to think (effort or token budget); each provider gets its own knob for it."""
    extensions: Mapping[str, Mapping[str, Any]]
    timeout: float
    """Total seconds for this call, replacing the model's configured ``timeout.total``."""


_OPTIONS = sorted(ChatOptions.__optional_keys__)
_WIRE_FIELDS = frozenset(
    {
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "seed",
        "user",
    }
)
"""Options that are top-level fields of an OpenAI request body, checked with the server's types
(``tools`` are checked one by one, since canonical and dict tools may be mixed)."""
_Seconds = Annotated[float, Meta(gt=0)] | None


def chat_request(
    model: str, messages: Sequence[MessageInput], options: ChatOptions, *, stream: bool
) -> ChatRequest:
    """Build the canonical request from the facade's arguments (dicts decoded as OpenAI's).

    Unknown options raise ``TypeError`` (as Python does for keyword arguments); values are checked
    with the server's own types, so both faces raise the same ``InvalidRequest``.
    """
    _check_names("stream" if stream else "chat", options)
    openai_wire.check_chat_fields(
        {
            name: value
            for name, value in options.items()
            if name in _WIRE_FIELDS and not isinstance(value, ToolChoice | ResponseFormat)
        }
    )
    stop = options.get("stop")
    tool_choice = options.get("tool_choice")
    response_format = options.get("response_format")
    request = ChatRequest(
        model=model,
        messages=_messages(messages),
        stream=stream,
        tools=tuple(
            t if isinstance(t, Tool) else openai_wire.decode_tools([t])[0] for t in options.get("tools", ())
        ),
        tool_choice=(
            tool_choice
            if tool_choice is None or isinstance(tool_choice, ToolChoice)
            else openai_wire.decode_tool_choice(tool_choice)
        ),
        parallel_tool_calls=options.get("parallel_tool_calls"),
        response_format=(
            response_format
            if response_format is None or isinstance(response_format, ResponseFormat)
            else openai_wire.decode_response_format(response_format)
        ),
        temperature=options.get("temperature"),
        top_p=options.get("top_p"),
        max_tokens=options.get("max_tokens"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        seed=options.get("seed"),
        user=options.get("user"),
        reasoning=options.get("reasoning"),
        extensions=_extensions(options.get("extensions", {})),
    )
    return validate(request)


def _check_names(method: str, options: Mapping[str, Any]) -> None:
    for name in options:
        if name not in ChatOptions.__optional_keys__:
            close = difflib.get_close_matches(name, _OPTIONS, n=1)
            hint = f". Did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{method}() got an unexpected keyword argument {name!r}{hint}")


def _extensions(value: object) -> dict[str, dict[str, Any]]:
    """Provider name -> extra request fields (``{"openai": {"logprobs": True}}``)."""
    if isinstance(value, Mapping) and all(isinstance(v, Mapping) for v in value.values()):
        return {str(k): dict(v) for k, v in value.items()}
    raise InvalidRequest(
        '`extensions` must map a provider name to its extra fields, e.g. {"openai": {"logprobs": True}}',
        param="extensions",
    )


def call_timeout(value: object) -> float | None:
    """Seconds > 0 or ``None``, else ``InvalidRequest`` naming ``timeout``."""
    return openai_wire.convert_inbound(value, _Seconds, root="timeout")  # type: ignore[arg-type]


def _messages(messages: Sequence[MessageInput]) -> tuple[Message, ...]:
    return tuple(m if isinstance(m, Message) else openai_wire.decode_messages([m])[0] for m in messages)
