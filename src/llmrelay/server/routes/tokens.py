"""Token counting: ``POST /v1/messages/count_tokens`` (Anthropic's shape) and ``POST /v1/tokens/count``.

Both count the input of a request at any alias (:mod:`llmrelay.token_count`: the provider's own
endpoint where there is one, else an estimate). Authentication and the key's model access are
checked as for the model routes; errors come in the caller's shape (Anthropic's on the first route,
OpenAI's on the second). ``/v1/tokens/count`` takes ``{"model", "messages": [...]}`` (Chat
Completions messages, optionally ``tools``) or ``{"model", "input": ...}`` (a Responses API
``input``, optionally ``instructions`` and ``tools``) and answers
``{"model", "input_tokens", "source": "provider" | "estimate"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from llmrelay.context import Context
from llmrelay.errors import InvalidRequest, RelayError
from llmrelay.server.body import read_body
from llmrelay.server.errors import ErrorBody, error_response
from llmrelay.server.handler import ServerState, client_host, request_id_of
from llmrelay.telemetry.metrics import RequestRecord
from llmrelay.token_count import TokenCount
from llmrelay.types import ChatRequest
from llmrelay.wire import anthropic_errors, anthropic_inbound, openai_errors, openai_inbound
from llmrelay.wire.json_body import decode_json_object
from llmrelay.wire.openai_responses import decode_responses_request

Answer = Callable[[ChatRequest, TokenCount], dict[str, Any]]


async def count_anthropic(request: Request) -> Response:
    return await _count(
        request,
        route="/v1/messages/count_tokens",
        decode=_decode_anthropic,
        error_body=anthropic_errors.encode_error,
        answer=lambda _, counted: {"input_tokens": counted.input_tokens},
    )


async def count_openai(request: Request) -> Response:
    return await _count(
        request,
        route="/v1/tokens/count",
        decode=_decode_openai,
        error_body=openai_errors.encode_error,
        answer=lambda canonical, counted: {
            "model": canonical.model,
            "input_tokens": counted.input_tokens,
            "source": counted.source,
        },
    )


def _decode_anthropic(body: bytes) -> ChatRequest:
    # A count_tokens body is a Messages body without ``max_tokens``.
    return anthropic_inbound.decode_messages_object({"max_tokens": 1, **decode_json_object(body)})


def _decode_openai(body: bytes) -> ChatRequest:
    raw = decode_json_object(body)
    if ("messages" in raw) == ("input" in raw):
        raise InvalidRequest(
            "give either `messages` (Chat Completions) or `input` (Responses API)", param="messages"
        )
    if "messages" in raw:
        return openai_inbound.decode_chat_request(body)
    return decode_responses_request(body).request


async def _count(
    request: Request,
    *,
    route: str,
    decode: Callable[[bytes], ChatRequest],
    error_body: ErrorBody,
    answer: Answer,
) -> Response:
    state: ServerState = request.app.state.llmrelay
    clock = state.relay.clock
    started = clock.now()
    request_id = request_id_of(request.headers)
    headers = {"x-request-id": request_id}
    key_id: str | None = None
    model: str | None = None
    try:
        principal = await state.auth.principal(request.headers, client=client_host(request), route=route)
        key_id = principal.id
        canonical = decode(await read_body(request, state.config.server))
        model = canonical.model
        principal.check_model(model, state.relay.model_names)
        ctx = Context(clock=clock, request_id=request_id, principal=principal.id, tags=principal.metadata)
        counted = await state.relay.count_tokens(canonical, ctx)
    except RelayError as err:
        response = error_response(err, error_body, headers=headers)
        _log(state, request_id, key_id, route, model, response.status_code, started, error=err.code)
        return response
    _log(state, request_id, key_id, route, model, 200, started)
    body = msgspec.json.encode(answer(canonical, counted))
    return Response(body, status_code=200, headers=headers, media_type="application/json")


def _log(
    state: ServerState,
    request_id: str,
    key_id: str | None,
    route: str,
    model: str | None,
    status: int,
    started: float,
    *,
    error: str | None = None,
) -> None:
    state.access_log.record(
        RequestRecord(
            request_id=request_id,
            key_id=key_id,
            route=route,
            model=model,
            status=status,
            seconds=state.relay.clock.now() - started,
            error=error,
        )
    )
