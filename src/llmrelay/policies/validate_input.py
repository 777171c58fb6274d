"""Input guards (request scope, after the deadline): cheap checks on what a caller sends, per alias.

An alias with ``guards:`` in its config gets them; every other alias costs one dict lookup. The
built-in checks are caps (bytes of text, messages, tool definitions) and control characters
(C0 controls other than tab, line feed and carriage return, and DEL: they hide text from people
reading a prompt and break some upstreams) and tool definitions whose ``parameters`` are not a
valid JSON schema (``tool_schemas: check``, :mod:`llmrelay.json_schemas`; a schema seen valid
before costs a lookup). A ``hook`` plugs in the user's own classifier
(prompt injection, moderation): ``"package.module:function"``, called with the canonical request,
sync or async, answering ``None`` (allow), a string (block, with that reason) or a replacement
request (redact). A hook that raises or runs past ``hook_timeout`` fails closed (blocks) unless
``hook_failure: open``.

A block is a 400 naming the guard (``code: input_guard``, ``param`` the guard's name) and never
echoing the offending text. ``enforce: false`` is shadow mode: the guard decides and logs, the
request goes on. Streams need nothing here: guards act before the call.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from llmrelay.context import Context
from llmrelay.errors import ConfigError, InvalidRequest
from llmrelay.json_schemas import SchemaCache
from llmrelay.service import Request, Result, Service
from llmrelay.types import ChatRequest, EmbeddingRequest, ImagePart, request_texts

log = logging.getLogger("llmrelay.guards")

_Count = Annotated[int, msgspec.Meta(ge=1)]
HookAnswer: TypeAlias = str | ChatRequest | EmbeddingRequest | None
Hook: TypeAlias = Callable[[Request], HookAnswer | Awaitable[HookAnswer]]

# C0 controls except \t \n \r, and DEL.
_CONTROL = frozenset(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
_CONTROL_TABLE = dict.fromkeys(map(ord, _CONTROL))


class InputGuards(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_input_bytes: _Count | None = None
    max_messages: _Count | None = None
    max_tools: _Count | None = None
    control_characters: Literal["allow", "reject"] = "reject"
    tool_schemas: Literal["allow", "check"] = "check"
    """``check``: each tool's ``parameters`` must be a valid JSON schema."""
    hook: str | None = None
    hook_timeout: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    hook_failure: Literal["open", "closed"] = "closed"
    enforce: bool = True


def violation(request: Request, guards: InputGuards) -> tuple[str, str] | None:
    """The first built-in guard ``request`` breaks, as ``(guard, why)``; ``None`` when it passes."""
    texts = list(_texts(request))
    if guards.max_input_bytes is not None:
        size = sum(len(text.encode()) for text in texts)
        if size > guards.max_input_bytes:
            return "max_input_bytes", f"{size} bytes of input, more than {guards.max_input_bytes}"
    if isinstance(request, ChatRequest):
        if guards.max_messages is not None and len(request.messages) > guards.max_messages:
            return "max_messages", f"{len(request.messages)} messages, more than {guards.max_messages}"
        if guards.max_tools is not None and len(request.tools) > guards.max_tools:
            return "max_tools", f"{len(request.tools)} tool definitions, more than {guards.max_tools}"
    if guards.control_characters == "reject" and any(
        len(text.translate(_CONTROL_TABLE)) != len(text) for text in texts
    ):
        return "control_characters", "the input holds control characters"
    return None


def _texts(request: Request) -> list[str]:
    """What the text checks read: :func:`~llmrelay.types.request_texts` and image URLs that are
    not inline data."""
    texts = request_texts(request)
    if isinstance(request, ChatRequest):
        texts += [
            part.url
            for message in request.messages
            for part in message.content
            if isinstance(part, ImagePart) and not part.url.startswith("data:")
        ]
    return texts


def load_hook(path: str, *, where: str) -> Hook:
    """``package.module:function`` as a callable; a config error names ``where`` otherwise."""
    module_name, _, attribute = path.partition(":")
    try:
        hook = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"cannot load the hook {path!r} at `{where}`: {err}") from err
    if not callable(hook):
        raise ConfigError(f"the hook {path!r} at `{where}` is not callable")
    return hook  # type: ignore[no-any-return]


class ValidateInput:
    def __init__(
        self,
        guards: Mapping[str, InputGuards],
        hooks: Mapping[str, Hook],
        *,
        alias_of: Callable[[str], str | None] = lambda name: name,
    ) -> None:
        """``guards`` and ``hooks`` by alias; aliases without guards are passed through.
        ``alias_of`` maps a requested name to its configured alias (a wildcard pattern's name)."""
        self._guards = dict(guards)
        self._hooks = dict(hooks)
        self._alias_of = alias_of
        self._schemas = SchemaCache()

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        alias = self._alias_of(request.model)
        guards = self._guards.get(alias) if alias is not None else None
        if guards is None:
            return await call_next(request, ctx)
        found = violation(request, guards)
        if found is None and guards.tool_schemas == "check" and isinstance(request, ChatRequest):
            found = self._tool_problem(request)
        if found is None and alias in self._hooks:
            request, found = await self._hook(request, guards, self._hooks[alias])
        if found is not None:
            name, why = found
            if guards.enforce:
                raise InvalidRequest(
                    f"blocked by input guard `{name}`: {why}", code="input_guard", param=name
                )
            log.info("shadow: input guard %s would block request %s: %s", name, ctx.request_id, why)
        return await call_next(request, ctx)

    def _tool_problem(self, request: ChatRequest) -> tuple[str, str] | None:
        for i, tool in enumerate(request.tools):
            if self._schemas.schema_problem(tool.parameters) is not None:
                # The problem quotes the caller's schema: say which tool, never echo it.
                return "tool_schemas", f"tool {i} has parameters that are not a valid JSON schema"
        return None

    async def _hook(
        self, request: Request, guards: InputGuards, hook: Hook
    ) -> tuple[Request, tuple[str, str] | None]:
        try:
            async with asyncio.timeout(guards.hook_timeout):
                answer: Any = hook(request)
                if inspect.isawaitable(answer):
                    answer = await answer
        except Exception as err:  # the user's code: any failure is the hook's verdict "unknown"
            log.warning("guard hook failed (%s); failing %s", type(err).__name__, guards.hook_failure)
            if guards.hook_failure == "open":
                return request, None
            return request, ("hook", "the guard hook could not decide")
        if answer is None:
            return request, None
        if isinstance(answer, str):
            return request, ("hook", answer)
        if isinstance(answer, ChatRequest | EmbeddingRequest):
            return answer, None  # redacted by the hook
        log.warning("guard hook answered %s; failing %s", type(answer).__name__, guards.hook_failure)
        return request, None if guards.hook_failure == "open" else ("hook", "the guard hook could not decide")
