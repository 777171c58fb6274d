"""Canonical request and response types: the one vocabulary of the whole pipeline.

Every policy, the router and every provider speak these types; wire codecs translate them to and from
each provider's format exactly once per attempt. They are frozen ``msgspec`` structs: a changed request
is a new value (``msgspec.structs.replace``), so a retry or a fallback never sees another attempt's
edits, and encoding them is as cheap as it gets in Python.

Provider-only knobs travel in ``extensions``, a mapping namespaced by provider
(``{"anthropic": {"top_k": 5}}``); a codec merges only its own namespace into the upstream body.
Provider-only data of one content part travels the same way in the part's ``meta`` (Anthropic's
``cache_control`` on a block, Gemini's ``thoughtSignature`` on a function call): the codec of that
provider writes its namespace back onto the part it encodes, every other codec ignores it. A
model's reasoning is a :class:`ReasoningPart`, kept so that it can be sent back next turn
(Anthropic and Gemini verify its signature when tools are used with thinking).
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]
FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter"]
Extensions: TypeAlias = dict[str, dict[str, Any]]
PartMeta: TypeAlias = dict[str, dict[str, Any]]
"""Provider-only data of one part, namespaced by provider like :data:`Extensions`."""
ReasoningEffort: TypeAlias = Literal["none", "minimal", "low", "medium", "high"]


class _Frozen(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every canonical type: immutable, keyword-only, compact when encoded."""


class _Part(_Frozen, frozen=True, kw_only=True):
    """Base of every content part.

    ``meta`` holds what one provider attached to the part and wants back byte for byte (Gemini's
    ``thoughtSignature`` on a function call or text part), or what a caller set for one provider
    (Anthropic's ``cache_control``); ``None`` when empty, so ordinary parts cost nothing.
    """

    meta: PartMeta | None = None

    def provider_meta(self, namespace: str) -> dict[str, Any]:
        """The data ``namespace``'s codec writes onto this part (empty when none)."""
        return self.meta.get(namespace, {}) if self.meta else {}


class TextPart(_Part, frozen=True, tag="text"):
    text: str


class ReasoningPart(_Part, frozen=True, tag="reasoning"):
    """A model's reasoning, kept so the next turn can send it back unchanged.

    ``text`` is the thinking (Anthropic) or thought summary (Gemini); ``signature`` is the opaque
    proof the provider checks when it comes back (Anthropic ``signature``, Gemini
    ``thoughtSignature``); ``redacted`` is an Anthropic ``redacted_thinking`` block's encrypted
    ``data``. ``provider`` is the wire format that produced it: a signature is only valid there,
    so the other codecs leave the part out.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    provider: str | None = None


class ImagePart(_Part, frozen=True, tag="image"):
    """An image as an ``https://`` URL or a ``data:<media type>;base64,...`` URL."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ToolCallPart(_Part, frozen=True, tag="tool_call"):
    """A model's request to call a tool; ``arguments`` is the JSON text the model produced."""

    id: str
    name: str
    arguments: str = "{}"


class ToolResultPart(_Part, frozen=True, tag="tool_result"):
    """The caller's answer to a tool call. ``name`` is filled when known (Gemini needs it)."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False


ContentPart: TypeAlias = TextPart | ReasoningPart | ImagePart | ToolCallPart | ToolResultPart


class Message(_Frozen, frozen=True):
    """One conversation turn.

    System prompts stay in place as ``role="system"`` messages; codecs whose format has a single
    top-level system field (Anthropic, Gemini) hoist and join them. Tool results are ``role="tool"``
    messages holding :class:`ToolResultPart` values.
    """

    role: Role
    content: tuple[ContentPart, ...] = ()
    name: str | None = None

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        return tuple(p for p in self.content if isinstance(p, ToolCallPart))


class Tool(_Frozen, frozen=True):
    """A function the model may call; ``parameters`` is a JSON schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object"})
    strict: bool | None = None
    meta: PartMeta | None = None
    """Provider-only data of the definition, like a part's (Anthropic's ``cache_control``)."""


class ToolChoice(_Frozen, frozen=True):
    """``auto``, ``none``, ``required`` (any tool) or ``tool`` (the one named)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


class ResponseFormat(_Frozen, frozen=True):
    """Free text, any JSON object, or JSON matching ``json_schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    json_schema: dict[str, Any] | None = None
    strict: bool | None = None


class Reasoning(_Frozen, frozen=True):
    """How much the model should think: an OpenAI-style ``effort`` or an explicit token budget.

    One canonical knob so that an OpenAI client's ``reasoning_effort`` reaches Anthropic's
    ``thinking`` and Gemini's ``thinkingConfig`` (and back); each codec maps what its provider has
    (:mod:`llmrelay.wire.reasoning`). ``budget_tokens`` wins when both are set.
    """

    effort: ReasoningEffort | None = None
    budget_tokens: int | None = None


class ChatRequest(_Frozen, frozen=True):
    """A chat call. ``model`` is the caller's alias until a target replaces it with its own."""

    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None
    reasoning: Reasoning | None = None
    extensions: Extensions = msgspec.field(default_factory=dict)

    def extension(self, namespace: str) -> dict[str, Any]:
        """The provider-only knobs for ``namespace`` (empty when none were given)."""
        return self.extensions.get(namespace, {})


class Usage(_Frozen, frozen=True):
    """Token counts. ``cached_input_tokens`` (read from a prompt cache) and
    ``cache_write_input_tokens`` (written to one, which Anthropic bills above the input price) are
    disjoint subsets of ``input_tokens``; ``reasoning_tokens`` is a subset of ``output_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_write_input_tokens=self.cache_write_input_tokens + other.cache_write_input_tokens,
        )


class ChatResponse(_Frozen, frozen=True):
    """A whole answer. ``provider`` and ``target`` say who produced it (the router sets ``target``)."""

    id: str
    model: str
    created: int
    message: Message
    finish_reason: FinishReason | None = "stop"
    usage: Usage = Usage()
    provider: str | None = None
    target: str | None = None
    replayed: bool = False
    """True when served from a stored answer (an idempotency replay or a cache hit) instead of a
    provider call."""

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        return self.message.tool_calls


class ToolCallDelta(_Frozen, frozen=True):
    """A fragment of a streamed tool call; ``index`` ties fragments of one call together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    meta: PartMeta | None = None
    """The call's provider data (Gemini's ``thoughtSignature``), merged into the part's ``meta``."""


class ReasoningDelta(_Frozen, frozen=True):
    """A fragment of a streamed :class:`ReasoningPart`; ``index`` ties fragments of one together."""

    index: int
    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    provider: str | None = None


class ChatChunk(_Frozen, frozen=True):
    """One streamed increment. The final chunks carry ``finish_reason`` and then ``usage``.

    ``meta`` is provider data for the answer's text part (Gemini may sign the text it streams).
    """

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    reasoning: tuple[ReasoningDelta, ...] = ()
    meta: PartMeta | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


class EmbeddingRequest(_Frozen, frozen=True):
    model: str
    input: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None
    extensions: Extensions = msgspec.field(default_factory=dict)

    def extension(self, namespace: str) -> dict[str, Any]:
        return self.extensions.get(namespace, {})


class EmbeddingResponse(_Frozen, frozen=True):
    model: str
    vectors: list[list[float]]
    usage: Usage = Usage()
    provider: str | None = None
    target: str | None = None
    replayed: bool = False


def text_message(role: Role, text: str) -> Message:
    """Shorthand for a message holding one text part."""
    return Message(role=role, content=(TextPart(text=text),))


def request_texts(request: ChatRequest | EmbeddingRequest) -> list[str]:
    """The text a request sends: an embedding request's inputs, or every message's text, tool
    results and tool-call arguments (what input guards and PII redaction look at)."""
    if isinstance(request, EmbeddingRequest):
        return list(request.input)
    out: list[str] = []
    for message in request.messages:
        for part in message.content:
            if isinstance(part, TextPart):
                out.append(part.text)
            elif isinstance(part, ToolResultPart):
                out.append(part.content)
            elif isinstance(part, ToolCallPart):
                out.append(part.arguments)
    return out
