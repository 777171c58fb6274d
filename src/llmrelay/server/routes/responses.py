"""OpenAI Responses API: ``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``.

Any target serves it: the body is decoded into the canonical request
(:mod:`llmrelay.wire.openai_responses`) and runs through the same pipeline as
``/v1/chat/completions``; the answer is encoded as a Response, or streamed as typed ``response.*``
events (:mod:`llmrelay.wire.openai_responses_stream`). The face has state of its own: with
``store`` (the default) the answer and its conversation are kept (:mod:`..response_store`), so a
later request may continue it with ``previous_response_id``; the Face's ``prepare`` hook puts the
stored turns in front of the new input, ``settle`` stores the answer (a stream: once it has ended
normally, before its ``response.completed`` event goes out). Each request gets its own
:class:`_Exchange` (its response id, its decoded fields), built per request like the Face it lends
:func:`~llmrelay.server.handler.handle`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.context import Context, new_request_id
from llmrelay.errors import RelayError
from llmrelay.server.errors import error_response
from llmrelay.server.handler import Face, ServerState, client_host, handle, request_id_of
from llmrelay.server.response_store import ResponseStore, StoredResponse, not_found
from llmrelay.service import Request as CanonicalRequest
from llmrelay.service import Result
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.telemetry.metrics import RequestRecord
from llmrelay.types import ChatChunk, ChatResponse, Message
from llmrelay.wire import openai_errors
from llmrelay.wire.openai_responses import ResponsesCall, decode_responses_request, with_history
from llmrelay.wire.openai_responses_output import encode_response
from llmrelay.wire.openai_responses_stream import Event, ResponsesStreamEncoder
from llmrelay.wire.sse import encode_event

ROUTE = "/v1/responses"


class _Exchange:
    """One ``POST /v1/responses``: its id, its decoded call, the history it continues."""

    def __init__(self, state: ServerState) -> None:
        self._store = state.responses
        self._clock = state.relay.clock
        self.id = "resp_" + new_request_id()
        self.created_at = int(self._clock.wall())
        self._call: ResponsesCall | None = None
        self._history: tuple[Message, ...] = ()
        self._completed_at: int | None = None
        self._body: dict[str, Any] | None = None

    @property
    def call(self) -> ResponsesCall:
        assert self._call is not None, "decode runs first"
        return self._call

    def face(self) -> Face:
        return Face(
            route=ROUTE,
            decode=self.decode,
            encode=self.encode,
            frames=self.frames,
            error_body=openai_errors.encode_error,
            prepare=self.prepare,
            settle=self.settle,
        )

    def decode(self, body: bytes) -> CanonicalRequest:
        self._call = decode_responses_request(body)
        return self._call.request

    async def prepare(self, request: CanonicalRequest, ctx: Context) -> CanonicalRequest:
        previous = self.call.previous_response_id
        if previous is None:
            return request
        record = await self._store.get(_principal(ctx), previous)
        if record is None:
            raise not_found(previous, param="previous_response_id")
        self._history = record.history
        return with_history(self.call, record.history)

    async def settle(self, result: Result, ctx: Context) -> None:
        """Store the answer when asked to; a stream is stored by an observer, once it has ended."""
        if not self.call.store:
            return
        if isinstance(result, ChatStream):
            result.observe(_StoreAtEnd(self, _principal(ctx)))
        else:
            assert isinstance(result, ChatResponse)
            await self.save(result, _principal(ctx))

    async def save(self, answer: ChatResponse, principal: str) -> None:
        history = (*self._history, *self.call.input, answer.message)
        await self._store.put(principal, self.id, StoredResponse(self.body(answer), history))

    def body(self, answer: ChatResponse) -> dict[str, Any]:
        """The Response for ``answer`` (made once: the stored copy is the one the client got)."""
        if self._body is None:
            self._body = encode_response(
                answer,
                self.call.echo,
                id=self.id,
                created_at=self.created_at,
                completed_at=self.completed_at(),
            )
        return self._body

    def completed_at(self) -> int:
        if self._completed_at is None:
            self._completed_at = int(self._clock.wall())
        return self._completed_at

    def encode(self, result: Result, request: CanonicalRequest) -> dict[str, Any]:
        assert isinstance(result, ChatResponse)
        return self.body(result)

    def frames(self, stream: ChatStream, request: CanonicalRequest) -> ResponsesFrames:
        return ResponsesFrames(stream, self)


class _StoreAtEnd(StreamObserver):
    """Stores a streamed answer once it has ended normally (not when cut or closed early)."""

    def __init__(self, exchange: _Exchange, principal: str) -> None:
        self._exchange = exchange
        self._principal = principal

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if error is None and stream.done:
            await self._exchange.save(stream.final(), self._principal)


class ResponsesFrames:
    """``event: response.*`` frames; no ``[DONE]``: ``response.completed`` (or ``.incomplete``,
    ``.failed``) is the last event."""

    def __init__(self, stream: ChatStream, exchange: _Exchange) -> None:
        self._stream = stream
        self._exchange = exchange
        self._encoder = ResponsesStreamEncoder(
            exchange.call.echo, id=exchange.id, model=stream.model, created_at=exchange.created_at
        )

    def chunk(self, chunk: ChatChunk) -> bytes:
        return _events(self._encoder.feed(chunk))

    def end(self) -> bytes:
        return _events(self._encoder.finish(self._exchange.body(self._stream.final())))

    def error(self, err: RelayError) -> bytes:
        return _events(self._encoder.fail(err))


def _events(events: list[Event]) -> bytes:
    return b"".join(encode_event(name, msgspec.json.encode(data)) for name, data in events)


def _principal(ctx: Context) -> str:
    return ctx.principal or "anonymous"


async def create_response(request: Request) -> Response:
    return await handle(request, _Exchange(request.app.state.llmrelay).face())


async def get_response(request: Request) -> Response:
    async def read(store: ResponseStore, principal: str, response_id: str) -> dict[str, Any] | None:
        record = await store.get(principal, response_id)
        return None if record is None else record.response

    return await _by_id(request, read)


async def delete_response(request: Request) -> Response:
    async def delete(store: ResponseStore, principal: str, response_id: str) -> dict[str, Any] | None:
        if not await store.delete(principal, response_id):
            return None
        return {"id": response_id, "object": "response", "deleted": True}

    return await _by_id(request, delete)


async def _by_id(
    request: Request, act: Callable[[ResponseStore, str, str], Awaitable[dict[str, Any] | None]]
) -> Response:
    """``GET`` / ``DELETE /v1/responses/{id}``: the caller's own responses only (404 otherwise)."""
    state: ServerState = request.app.state.llmrelay
    started = state.relay.clock.now()
    request_id = request_id_of(request.headers)
    key_id: str | None = None
    try:
        principal = await state.auth.principal(request.headers, client=client_host(request), route=ROUTE)
        key_id = principal.id
        response_id = request.path_params["response_id"]
        body = await act(state.responses, principal.id, response_id)
        if body is None:
            raise not_found(response_id)
    except RelayError as err:
        response = error_response(err, openai_errors.encode_error, headers={"x-request-id": request_id})
        error: str | None = err.code
    else:
        response = _json(body)
        response.headers["x-request-id"] = request_id
        error = None
    state.access_log.record(
        RequestRecord(
            request_id=request_id,
            key_id=key_id,
            route=f"{request.method} {ROUTE}/{{id}}",
            status=response.status_code,
            seconds=state.relay.clock.now() - started,
            error=error,
        )
    )
    return response


def _json(body: dict[str, Any]) -> Response:
    return Response(msgspec.json.encode(body), media_type="application/json")
