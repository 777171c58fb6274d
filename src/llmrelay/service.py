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

A policy that needs a stream's chunks or its end never wraps the stream in a generator of its
own: it attaches to the :class:`~llmrelay.streams.ChatStream` that ``call_next`` returned, which
has one pump for everyone (``observe`` for ``on_chunk``/``on_end``, ``limit_until`` and
``limit_idle`` for time limits, ``rewrite`` and ``check_end`` to change or refuse what the reader
gets). The stream's module docstring and ``docs/architecture.md`` (section 3) say how::

    result = await call_next(request, ctx)
    if isinstance(result, ChatStream):
        result.observe(my_observer)  # a StreamObserver: on_chunk per chunk, on_end once
    return result
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
