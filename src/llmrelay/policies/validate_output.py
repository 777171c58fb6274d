"""Output validation (target scope, between retry and the circuit breaker): JSON that was asked for.

Where it sits (docs/architecture.md §4): ``retry -> validate_output -> circuit_breaker``. Only a
request whose ``response_format`` is ``json_object`` or ``json_schema`` is checked, on an alias
with ``validate_output:`` configured; every other request passes straight through.

Unary: the answer must parse as JSON (an object for ``json_object``) and match the schema. When it
does not, the same target is asked again (``max_retries`` times, default 1) with the invalid
answer and the validation error appended to the conversation, so the model can correct itself;
then the call fails with :class:`~llmrelay.errors.InvalidOutput` (502, ``invalid_output``), which
the router may fail over to another target (docs/architecture.md §5). Every re-ask passes the
breaker below as a success: the target answered. An answer that calls tools is not checked.

Streams: the answer is checked when the stream ends (:meth:`ChatStream.check_end`); by then the
text has reached the caller, so an invalid one ends with an ``invalid_output`` error event
instead of the format's terminator (as any failure after the commit point does), and nothing is
re-asked. ``buffer_streams: true`` instead reads a JSON-mode stream to its end before sending any
of it, re-asking like a unary call, and replays the valid answer as a stream (the caller waits for
the whole answer before the first chunk). ``enforce: false`` is shadow mode: log, never act.
Logs never quote the answer.
"""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec

from llmrelay.context import Context
from llmrelay.errors import InvalidOutput
from llmrelay.json_schemas import Check, SchemaCache
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk, ChatRequest, ChatResponse, Message, TextPart

log = logging.getLogger("llmrelay.validate_output")


class OutputValidation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=5)] = 1
    """Re-asks of the same target with the validation error (each is one more upstream call)."""
    buffer_streams: bool = False
    """Read a JSON-mode stream whole and validate it before the caller gets a chunk."""
    enforce: bool = True


class ValidateOutput:
    def __init__(self, config: OutputValidation, schemas: SchemaCache, *, label: str) -> None:
        self._config = config
        self._schemas = schemas
        self._label = label

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if not isinstance(request, ChatRequest):
            return await call_next(request, ctx)
        wanted = request.response_format
        if wanted is None or wanted.type == "text":
            return await call_next(request, ctx)
        check = self._schemas.check_for(wanted)
        if request.stream and not self._config.buffer_streams:
            result = await call_next(request, ctx)
            if isinstance(result, ChatStream):
                result.check_end(lambda answer: self._at_end(check, answer, ctx))
            return result
        asked = request
        for attempt in range(self._config.max_retries + 1):
            result = await call_next(asked, ctx)
            answer, chunks = await _whole(result)
            problem = None if answer.tool_calls else check(answer.text)
            if problem is None:
                return result if chunks is None else _replay(result, chunks)
            if not self._config.enforce:
                log.info("shadow: invalid output from %s for request %s", self._label, ctx.request_id)
                return result if chunks is None else _replay(result, chunks)
            log.info(
                "invalid output from %s for request %s (attempt %d of %d)",
                self._label,
                ctx.request_id,
                attempt + 1,
                self._config.max_retries + 1,
            )
            asked = _with_feedback(asked, answer.text, problem)
            if ctx.stats is not None:
                ctx.stats.attempts += 1  # a re-ask is one more upstream call (x-llmrelay-attempts)
        raise InvalidOutput(
            f"the answer from {self._label} is not the JSON the request asked for after"
            f" {self._config.max_retries + 1} attempts: {problem}",
            provider=answer.provider,
        )

    def _at_end(self, check: Check, answer: ChatResponse, ctx: Context) -> InvalidOutput | None:
        problem = None if answer.tool_calls else check(answer.text)
        if problem is None:
            return None
        if not self._config.enforce:
            log.info("shadow: invalid streamed output from %s for request %s", self._label, ctx.request_id)
            return None
        log.info("invalid streamed output from %s for request %s", self._label, ctx.request_id)
        return InvalidOutput(
            f"the streamed answer from {self._label} is not the JSON the request asked for: {problem}",
            provider=answer.provider,
        )


async def _whole(result: Result) -> tuple[ChatResponse, list[ChatChunk] | None]:
    """The whole answer, and for a stream the chunks read (the stream is read and closed)."""
    if isinstance(result, ChatResponse):
        return result, None
    assert isinstance(result, ChatStream)
    chunks: list[ChatChunk] = []
    async with result:
        while batch := await result.next_batch():
            chunks.extend(batch)
    return result.final(), chunks


def _replay(stream: Result, chunks: list[ChatChunk]) -> ChatStream:
    assert isinstance(stream, ChatStream)
    return ChatStream.replay(
        chunks, id=stream.id, model=stream.model, created=stream.created, provider=stream.provider
    )


def _with_feedback(request: ChatRequest, answer: str, problem: str) -> ChatRequest:
    """The conversation so far, the invalid answer, and what was wrong with it."""
    kind = "JSON schema" if request.response_format and request.response_format.json_schema else "JSON"
    feedback = (
        f"Your answer was rejected: {problem}. Reply again with only the JSON value, matching the"
        f" requested {kind}, and nothing else."
    )
    messages = (
        *request.messages,
        Message(role="assistant", content=(TextPart(text=answer),)),
        Message(role="user", content=(TextPart(text=feedback),)),
    )
    return msgspec.structs.replace(request, messages=messages)
