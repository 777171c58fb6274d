"""The core contract: a service is an async function, a policy wraps one.

::

    Service = async (request, ctx) -> result
    Policy  = async (request, ctx, call_next) -> result

A policy never holds its successor: ``compose`` binds ``call_next`` at build time, so one policy
instance can sit in several stacks and a unit test passes a fake ``call_next``.

Example: ``compose([telemetry, deadline], provider)`` runs ``telemetry`` first; it calls
``deadline``, which calls ``provider``. The first policy is outermost.

A chat request with ``stream=True`` yields a :class:`~llmrelay.streams.ChatStream`; without, a
:class:`~llmrelay.types.ChatResponse`; an :class:`~llmrelay.types.EmbeddingRequest` yields an
:class:`~llmrelay.types.EmbeddingResponse`. Policies that only care about chat pass the rest on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol, TypeAlias

from llmrelay.context import Context
from llmrelay.streams import ChatStream
from llmrelay.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse

Request: TypeAlias = ChatRequest | EmbeddingRequest
Result: TypeAlias = ChatResponse | ChatStream | EmbeddingResponse
Service: TypeAlias = Callable[[Request, Context], Awaitable[Result]]


class Policy(Protocol):
    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result: ...


def compose(policies: Sequence[Policy], terminal: Service) -> Service:
    """Wrap ``terminal`` in ``policies``; the first policy sees the request first."""
    service = terminal
    for policy in reversed(policies):
        service = partial(policy, call_next=service)
    return service
