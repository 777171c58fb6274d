"""The prompt and answer log (request scope, innermost, only for aliases with ``log_content``).

Off by default: nothing here is built unless some alias sets ``log_content: true``. For those
aliases, one JSON line per call on the ``llmrelay.content`` logger (its own logger, so operators
can send it somewhere else than the access log or drop it): request id, trace id (when traced),
model, the messages and
the answer as canonical JSON, or the error code when the call failed. Secrets are always
redacted: every credential the config holds (targets' keys and header values, the master key,
static keys), and anything shaped like one (``sk-...``, bearer tokens, JWTs, ``api_key=...``), the
scrub upstream error messages get. Sitting after idempotency, a replayed answer is not logged twice.
On a stream, the line is written when the stream ends, with the joined answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

import msgspec

from llmrelay.context import Context
from llmrelay.errors import RelayError
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream, StreamObserver
from llmrelay.types import ChatRequest, ChatResponse, Message
from llmrelay.wire.upstream_text import Credentials

_encoder = msgspec.json.Encoder()


class ContentLog:
    def __init__(
        self,
        aliases: Collection[str],
        alias_of: Callable[[str], str | None],
        credentials: Credentials,
        logger: logging.Logger | None = None,
    ) -> None:
        self._aliases = frozenset(aliases)
        self._alias_of = alias_of
        self._credentials = credentials
        self._logger = logger or logging.getLogger("llmrelay.content")

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if not isinstance(request, ChatRequest) or self._alias_of(request.model) not in self._aliases:
            return await call_next(request, ctx)
        try:
            result = await call_next(request, ctx)
        except RelayError as err:
            self.write(ctx, request, error=err.code)
            raise
        if isinstance(result, ChatStream):
            result.observe(_AtEnd(self, ctx, request))
        elif isinstance(result, ChatResponse) and not result.replayed:
            self.write(ctx, request, answer=result.message)
        return result

    def write(
        self, ctx: Context, request: ChatRequest, *, answer: Message | None = None, error: str | None = None
    ) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        line: dict[str, Any] = {
            "event": "content",
            "request_id": ctx.request_id,
            **({"trace_id": ctx.trace_id} if ctx.trace_id is not None else {}),
            "model": request.model,
            "messages": request.messages,
        }
        if answer is not None:
            line["answer"] = answer
        if error is not None:
            line["error"] = error
        self._logger.info(self._credentials.scrub(_encoder.encode(line).decode()))


class _AtEnd(StreamObserver):
    def __init__(self, log: ContentLog, ctx: Context, request: ChatRequest) -> None:
        self._log = log
        self._ctx = ctx
        self._request = request

    async def on_end(self, stream: ChatStream, error: BaseException | None) -> None:
        if stream.replayed:
            return
        if error is not None:
            self._log.write(self._ctx, self._request, error=getattr(error, "code", type(error).__name__))
        elif stream.done:
            self._log.write(self._ctx, self._request, answer=stream.final().message)
