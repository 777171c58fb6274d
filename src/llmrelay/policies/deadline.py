"""Deadline: the request's total time budget (request scope, just inside telemetry).

Sets ``ctx.deadline`` unless the caller already chose one (``Relay.chat(timeout=...)``, or later a
request header), so every policy below reads the same deadline. When it passes, the call is
cancelled (which closes the upstream connection) and :class:`DeadlineExceeded` is raised.

On a stream the budget is registered as the stream's deadline
(:meth:`~llmrelay.streams.ChatStream.limit_until`): a stream that outlives it is closed and ends
with :class:`DeadlineExceeded`, never with a silent truncation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TypeVar

from llmrelay.context import Context
from llmrelay.errors import DeadlineExceeded
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream

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
            result.limit_until(ctx.deadline, ctx.clock, _exceeded)
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
        raise _exceeded() from err


def _exceeded() -> DeadlineExceeded:
    return DeadlineExceeded(
        "the request exceeded its total deadline; raise `timeout.total` or send a shorter request"
    )
