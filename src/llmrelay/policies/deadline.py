"""Deadline: the request's total time budget (request scope, just inside telemetry).

Sets ``ctx.deadline`` unless the caller already chose one (``Relay.chat(timeout=...)``, or later a
request header), so every policy below reads the same deadline. When it passes, the call is
cancelled (which closes the upstream connection) and :class:`DeadlineExceeded` is raised.

On a stream the budget also bounds the wait for each chunk: a stream that outlives its deadline is
closed and ends with an error, never with a silent truncation.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import TypeVar

from llmrelay.context import Context
from llmrelay.errors import DeadlineExceeded
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream
from llmrelay.types import ChatChunk

T = TypeVar("T")


class Deadline:
    def __init__(self, total_for: Callable[[str], float | None]) -> None:
        """``total_for(alias)`` gives the configured total for a model alias (``None``: no limit)."""
        self._total_for = total_for

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if ctx.deadline is None:
            ctx = ctx.with_timeout(self._total_for(request.model))
        if ctx.deadline is None:
            return await call_next(request, ctx)
        result = await _within(ctx, call_next(request, ctx))
        if isinstance(result, ChatStream):
            return result.derive(lambda inner: _bounded(inner, ctx))
        return result


async def _within(ctx: Context, awaitable: Awaitable[T]) -> T:
    remaining = ctx.remaining()
    if remaining is not None and remaining <= 0:
        if isinstance(awaitable, Coroutine):
            awaitable.close()
        raise DeadlineExceeded("the request's deadline passed before it could start")
    try:
        async with ctx.clock.timeout(remaining):
            return await awaitable
    except TimeoutError as err:
        raise DeadlineExceeded(
            "the request exceeded its total deadline; raise `timeout.total` or send a shorter request"
        ) from err


async def _bounded(stream: ChatStream, ctx: Context) -> AsyncGenerator[ChatChunk, None]:
    while True:
        try:
            chunk = await _within(ctx, anext(stream))
        except StopAsyncIteration:
            return
        yield chunk
