"""Per-attempt timeouts (target scope, innermost before the provider).

``first_token`` bounds the wait for the provider's answer: the first chunk of a stream (the
provider returns only once it has it) or the whole unary answer. Expiry cancels the attempt, which
closes the upstream HTTP response, and raises :class:`~llmrelay.errors.Timeout` (retryable: nothing
was committed). ``idle`` bounds each wait for the upstream's next read after that: the policy
registers it on the stream (:meth:`~llmrelay.streams.ChatStream.limit_idle`, one timer per stream,
not a timeout scope per chunk); expiry ends the stream with
:class:`~llmrelay.errors.StreamTimeout`, a timeout that is never retried and never a silent
truncation. The connect timeout lives in the HTTP transport; the request's total budget in
:mod:`.deadline`.
"""

from __future__ import annotations

from llmrelay.clock import Clock
from llmrelay.context import Context
from llmrelay.errors import StreamTimeout, Timeout
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream


class AttemptTimeout:
    def __init__(self, clock: Clock, *, first_token: float | None, idle: float | None, label: str) -> None:
        self._clock = clock
        self._first_token = first_token
        self._idle = idle
        self._label = label

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        if self._first_token is None:
            result = await call_next(request, ctx)
        else:
            try:
                async with self._clock.timeout(self._first_token):
                    result = await call_next(request, ctx)
            except TimeoutError as err:
                raise Timeout(f"{self._label} sent nothing within {self._first_token}s") from err
        if isinstance(result, ChatStream) and self._idle is not None:
            result.limit_idle(self._idle, self._clock, self._silent)
        return result

    def _silent(self) -> StreamTimeout:
        return StreamTimeout(f"{self._label} went silent for {self._idle}s mid-stream")
