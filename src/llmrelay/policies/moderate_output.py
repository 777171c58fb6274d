"""Output moderation (request scope, just inside ``redact_pii``): the user's own judge of answers.

Where it sits (docs/architecture.md §4): after the router has an answer and before PII
placeholders are restored, so the hook sees what the model wrote, never the caller's redacted
values. Configured per alias (``moderation: {hook: "package.module:function"}``); other aliases
pass straight through.

The hook is a plain function ``(request, answer_text) -> reason | None``, called on the event
loop (keep it fast; a slow classifier belongs behind a cache or in a thread of its own). ``None``
lets the answer through. A reason blocks it:

- unary: the caller gets the answer with its text removed and ``finish_reason: content_filter``,
  as providers report their own output filters (clients already handle that); the reason is
  logged, never sent;
- stream: the text has reached the caller by the time the answer is whole, so the stream ends
  with an ``output_blocked`` error event instead of its terminator (as any failure after the
  commit point does).

A hook that raises blocks (``failure: closed``, the default) or lets the answer through
(``failure: open``); ``enforce: false`` is shadow mode: log, never act. Logs never quote the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Literal

import msgspec

from llmrelay.context import Context
from llmrelay.errors import OutputBlocked
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream
from llmrelay.types import ChatRequest, ChatResponse, Message

log = logging.getLogger("llmrelay.moderate_output")

OutputHook = Callable[[ChatRequest, str], "str | None"]


class OutputModeration(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    hook: str
    """``package.module:function``: ``(request, answer_text) -> reason | None``."""
    failure: Literal["closed", "open"] = "closed"
    enforce: bool = True


class ModerateOutput:
    def __init__(
        self,
        settings: Mapping[str, tuple[OutputModeration, OutputHook]],
        *,
        alias_of: Callable[[str], str | None],
    ) -> None:
        """``settings`` by alias; ``alias_of`` maps a requested name to its configured alias."""
        self._settings = dict(settings)
        self._alias_of = alias_of

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        alias = self._alias_of(request.model) if isinstance(request, ChatRequest) else None
        found = self._settings.get(alias) if alias is not None else None
        if found is None:
            return await call_next(request, ctx)
        assert isinstance(request, ChatRequest)
        config, hook = found
        result = await call_next(request, ctx)
        if isinstance(result, ChatStream):
            result.check_end(lambda answer: self._blocked_stream(config, hook, request, answer, ctx))
            return result
        assert isinstance(result, ChatResponse)
        reason = _judge(config, hook, request, result.text, ctx)
        if reason is None:
            return result
        return msgspec.structs.replace(
            result, message=Message(role="assistant", content=()), finish_reason="content_filter"
        )

    def _blocked_stream(
        self,
        config: OutputModeration,
        hook: OutputHook,
        request: ChatRequest,
        answer: ChatResponse,
        ctx: Context,
    ) -> OutputBlocked | None:
        if _judge(config, hook, request, answer.text, ctx) is None:
            return None
        return OutputBlocked("the answer was blocked by the output moderation hook", provider=answer.provider)


def _judge(
    config: OutputModeration, hook: OutputHook, request: ChatRequest, text: str, ctx: Context
) -> str | None:
    """The reason to block (``None``: let it through), shadow mode and hook failures applied."""
    try:
        reason = hook(request, text)
    except Exception as err:  # the user's code: its failure is a verdict by `failure`, never a crash
        log.warning("output moderation hook failed for request %s: %s", ctx.request_id, type(err).__name__)
        reason = None if config.failure == "open" else "the moderation hook failed"
    if reason is None:
        return None
    if not config.enforce:
        log.info("shadow: output of request %s would be blocked: %s", ctx.request_id, reason)
        return None
    log.info("output of request %s blocked: %s", ctx.request_id, reason)
    return str(reason)
