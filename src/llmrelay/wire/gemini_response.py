"""Gemini ``GenerateContentResponse`` and embedding replies -> canonical responses (pure).

Part of the :mod:`llmrelay.wire.gemini` codec; the stream decoder reuses the typed structs and the
part, finish and usage rules defined here, so a unary answer and the same answer streamed decode
alike.

Decisions the Gemini format forces on us:

- **Call ids.** Gemini function calls carry no id (only some models fill ``functionCall.id``). We
  synthesise ``call_<hash>`` from the response id, the call's position, name and arguments: the
  same reply always gets the same ids, so a replayed or cached answer stays consistent.
- **Thoughts.** Parts with ``thought: true`` are the model's reasoning summaries, not its answer:
  they become :class:`~llmrelay.types.ReasoningPart` values (``provider="gemini"``), kept apart
  from the text. A ``thoughtSignature`` is kept byte for byte where it came: on the reasoning part,
  or in ``meta["gemini"]`` of the function call or text it was on, because Gemini wants it back
  on the same part next turn (Gemini 3 refuses function-call history without it). Their tokens
  (``thoughtsTokenCount``) are billed as output but not included in ``candidatesTokenCount``,
  so ``output_tokens = candidates + thoughts`` and ``reasoning_tokens = thoughts`` (a subset,
  as :class:`~llmrelay.types.Usage` defines it). ``toolUsePromptTokenCount`` is billed as input
  and joins ``input_tokens``; ``cachedContentTokenCount`` is already part of ``promptTokenCount``.
- **Safety.** A blocked prompt (``promptFeedback.blockReason``) or a candidate stopped by a filter
  with nothing usable raises :class:`ContentFiltered`; a filter that stops an answer part-way keeps
  the text with ``finish_reason="content_filter"``.
- **Finish.** Gemini says ``STOP`` also when it calls functions; canonically that is ``tool_calls``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from llmrelay.errors import ContentFiltered, UpstreamError
from llmrelay.types import (
    ChatResponse,
    ContentPart,
    EmbeddingResponse,
    FinishReason,
    Message,
    PartMeta,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from llmrelay.wire.gemini_errors import ErrorStatus

PROVIDER = "gemini"

FILTER_REASONS = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
# The model failed to produce a usable call; another attempt usually succeeds.
_BROKEN_CALL_REASONS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"})


class _Wire(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of the wire structs: camelCase names, unknown fields ignored (the API grows often)."""


class FunctionCall(_Wire):
    name: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str | None = None


class Part(_Wire):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: FunctionCall | None = None


class Content(_Wire):
    role: str | None = None
    parts: list[Part] = msgspec.field(default_factory=list)


class Candidate(_Wire):
    content: Content | None = None
    finish_reason: str | None = None
    index: int = 0


class PromptFeedback(_Wire):
    block_reason: str | None = None


class UsageMetadata(_Wire):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class GenerateContentResponse(_Wire):
    """One reply of ``generateContent``, or one ``data:`` event of ``streamGenerateContent``.

    ``error`` is only ever set on an error event inside a 200 stream.
    """

    candidates: list[Candidate] = msgspec.field(default_factory=list)
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: ErrorStatus | None = None


class _Embedding(_Wire):
    values: list[float]


class _BatchEmbedResponse(_Wire):
    embeddings: list[_Embedding] = msgspec.field(default_factory=list)


_response_decoder = msgspec.json.Decoder(GenerateContentResponse)
_embed_decoder = msgspec.json.Decoder(_BatchEmbedResponse)


def parse_response(body: bytes | str) -> GenerateContentResponse:
    """Decode one reply or stream event; unreadable JSON is an upstream fault."""
    try:
        return _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise UpstreamError(f"{PROVIDER} sent an unreadable response: {err}", provider=PROVIDER) from err


def decode_chat_response(body: bytes | str, *, model: str, created: int = 0) -> ChatResponse:
    """A ``generateContent`` reply as a :class:`ChatResponse`.

    ``model`` is used only when the reply names no ``modelVersion``; ``created`` is the caller's
    clock (Gemini reports no creation time).
    """
    reply = parse_response(body)
    candidate = first_candidate(reply)
    response_id = reply.response_id or "gemini-" + hashlib.sha256(_as_bytes(body)).hexdigest()[:24]
    decoded = candidate_parts(candidate, response_id=response_id, first_index=0)
    calls = decoded.calls
    parts: list[ContentPart] = list(decoded.reasoning)
    if decoded.text or decoded.text_meta:
        parts.append(TextPart(text=decoded.text, meta=decoded.text_meta))
    parts.extend(calls)
    has_content = bool(decoded.text or calls)
    finish = finish_reason(candidate.finish_reason, has_content=has_content, has_calls=bool(calls))
    return ChatResponse(
        id=response_id,
        model=reply.model_version or model,
        created=created,
        message=Message(role="assistant", content=tuple(parts)),
        finish_reason=finish,
        usage=usage_from(reply.usage_metadata),
        provider=PROVIDER,
    )


def first_candidate(reply: GenerateContentResponse) -> Candidate:
    """The one candidate we ask for; none means a blocked prompt or an upstream fault."""
    if reply.candidates:
        return reply.candidates[0]
    block = reply.prompt_feedback.block_reason if reply.prompt_feedback else None
    if block:
        raise ContentFiltered(f"{PROVIDER} blocked the prompt ({block})", provider=PROVIDER)
    raise UpstreamError(f"{PROVIDER} returned no candidates", provider=PROVIDER)


class CandidateParts(msgspec.Struct, frozen=True):
    """What one candidate (or one stream event's slice of it) holds, in canonical form."""

    reasoning: list[ReasoningPart]
    text: str
    text_meta: PartMeta | None
    """``{"gemini": {"thoughtSignature": ...}}`` when a text part was signed (the last one wins)."""
    calls: list[ToolCallPart]


def candidate_parts(candidate: Candidate, *, response_id: str, first_index: int) -> CandidateParts:
    """Thoughts, answer text and function calls (numbered from ``first_index``), signatures kept."""
    reasoning: list[ReasoningPart] = []
    texts: list[str] = []
    text_meta: PartMeta | None = None
    calls: list[ToolCallPart] = []
    for part in candidate.content.parts if candidate.content is not None else ():
        signed = _signed(part.thought_signature)
        if part.function_call is not None:
            call = part.function_call
            arguments = msgspec.json.encode(call.args).decode()
            index = first_index + len(calls)
            calls.append(
                ToolCallPart(
                    id=call.id or call_id(response_id, index, call.name, arguments),
                    name=call.name,
                    arguments=arguments,
                    meta=signed,
                )
            )
        elif part.thought:
            reasoning.append(
                ReasoningPart(text=part.text or "", signature=part.thought_signature, provider=PROVIDER)
            )
        else:
            texts.append(part.text or "")
            text_meta = signed or text_meta
    return CandidateParts(reasoning=reasoning, text="".join(texts), text_meta=text_meta, calls=calls)


def _signed(signature: str | None) -> PartMeta | None:
    return {PROVIDER: {"thoughtSignature": signature}} if signature is not None else None


def call_id(response_id: str, index: int, name: str, arguments: str) -> str:
    """A stable id for a call Gemini left unnamed (see the module docstring)."""
    digest = hashlib.sha256(f"{response_id}\x00{index}\x00{name}\x00{arguments}".encode())
    return "call_" + digest.hexdigest()[:24]


def finish_reason(reason: str | None, *, has_content: bool, has_calls: bool) -> FinishReason | None:
    """The canonical finish reason; raises when a filter or a broken call left nothing usable."""
    if reason is None:
        return None
    if reason in FILTER_REASONS:
        if not has_content:
            raise ContentFiltered(f"{PROVIDER} filtered the answer ({reason})", provider=PROVIDER)
        return "content_filter"
    if reason in _BROKEN_CALL_REASONS:
        raise UpstreamError(
            f"{PROVIDER} produced an unusable function call ({reason})",
            code="malformed_function_call",
            provider=PROVIDER,
        )
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def usage_from(metadata: UsageMetadata | None) -> Usage:
    if metadata is None:
        return Usage()
    return Usage(
        input_tokens=metadata.prompt_token_count + metadata.tool_use_prompt_token_count,
        output_tokens=metadata.candidates_token_count + metadata.thoughts_token_count,
        cached_input_tokens=metadata.cached_content_token_count,
        reasoning_tokens=metadata.thoughts_token_count,
    )


def decode_embedding_response(body: bytes | str, *, model: str) -> EmbeddingResponse:
    """A ``batchEmbedContents`` reply; Gemini reports no token counts for embeddings."""
    try:
        reply = _embed_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise UpstreamError(f"{PROVIDER} sent an unreadable response: {err}", provider=PROVIDER) from err
    return EmbeddingResponse(model=model, vectors=[e.values for e in reply.embeddings], provider=PROVIDER)


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body
