"""PII redaction (request scope, after validate_input): per alias, on prompts and on answers.

Where it sits (docs/architecture.md §4): ``validate_input -> redact_pii -> idempotency``, so guards
see what the caller sent and nothing below (idempotency records, the router, retries, every
upstream, their logs) sees the values. Only aliases with ``pii:`` configured are touched; others
cost one dict lookup.

- ``prompts: true`` (default): every text of the request (messages, tool results, tool call
  arguments) has each finding replaced by a numbered placeholder (``<EMAIL_1>``), the same value
  by the same placeholder; the answer gets the values back, unary or streamed (across chunk
  boundaries: :mod:`llmrelay.pii.stream_text`). Embedding inputs are redacted (nothing to restore).
- ``outputs: true``: findings in the answer that were not in the prompt are masked (``[EMAIL]``);
  a stream is then held back by :data:`~llmrelay.pii.stream_text.WINDOW` characters.
- ``kinds`` chooses the built-in detectors; ``custom`` adds ``{name, pattern}`` regular
  expressions; ``presidio: true`` adds Microsoft Presidio's analyzer (when installed).
- ``enforce: false`` is shadow mode: count the findings and log their kinds, change nothing.

Logs never hold a value: the shadow and debug lines give kinds and counts only.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Annotated

import msgspec

from llmrelay.context import Context
from llmrelay.errors import ConfigError
from llmrelay.pii.detectors import KINDS, Detector, DetectorSet, Kind
from llmrelay.pii.redactor import Redactor, SpanFinder, Vault
from llmrelay.pii.stream_text import PiiRewriter
from llmrelay.service import Request, Result, Service
from llmrelay.streams import ChatStream
from llmrelay.types import (
    ChatResponse,
    EmbeddingRequest,
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    request_texts,
)

log = logging.getLogger("llmrelay.pii")


class CustomPattern(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9_]{0,20}$")]
    """The placeholder's name: ``EMPLOYEE_ID`` gives ``<EMPLOYEE_ID_1>``."""
    pattern: str


class PiiConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    prompts: bool = True
    outputs: bool = False
    kinds: list[Kind] = msgspec.field(default_factory=lambda: list(KINDS))
    custom: list[CustomPattern] = msgspec.field(default_factory=list)
    presidio: bool = False
    enforce: bool = True


def build_redactor(config: PiiConfig, *, where: str) -> Redactor:
    """The detectors ``config`` asks for; a custom pattern that does not compile, or Presidio
    asked for but not installed, is a :class:`ConfigError` naming ``where``."""
    custom = []
    for i, item in enumerate(config.custom):
        try:
            re.compile(item.pattern)
        except re.error as err:
            raise ConfigError(f"invalid pattern at `{where}.custom[{i}].pattern`: {err}") from err
        custom.append(Detector(item.name, item.pattern))
    extra: list[SpanFinder] = []
    if config.presidio:
        from llmrelay.pii.presidio import presidio_finder  # deferred: an optional package

        extra.append(presidio_finder(where=f"{where}.presidio"))
    return Redactor(DetectorSet(config.kinds, custom), extra)


class RedactPii:
    def __init__(
        self,
        configs: Mapping[str, PiiConfig],
        redactors: Mapping[str, Redactor],
        *,
        alias_of: Callable[[str], str | None] = lambda name: name,
    ) -> None:
        self._configs = dict(configs)
        self._redactors = dict(redactors)
        self._alias_of = alias_of

    async def __call__(self, request: Request, ctx: Context, call_next: Service) -> Result:
        alias = self._alias_of(request.model)
        config = self._configs.get(alias) if alias is not None else None
        if config is None or alias is None:
            return await call_next(request, ctx)
        redactor = self._redactors[alias]
        if not config.enforce:
            found = Counter(span.label for text in request_texts(request) for span in redactor.spans(text))
            if found:
                kinds = ", ".join(f"{n} {label}" for label, n in sorted(found.items()))
                log.info("shadow: pii redaction would replace %s in request %s", kinds, ctx.request_id)
            return await call_next(request, ctx)
        vault = Vault(redactor)
        if config.prompts:
            request = _redacted(request, vault)
        result = await call_next(request, ctx)
        masker = redactor if config.outputs else None
        if not vault and masker is None:
            return result
        if isinstance(result, ChatResponse):
            return _restored(result, vault, masker)
        if isinstance(result, ChatStream):
            result.rewrite(PiiRewriter(vault, masker))
        return result


def _redacted(request: Request, vault: Vault) -> Request:
    if isinstance(request, EmbeddingRequest):
        return msgspec.structs.replace(request, input=tuple(vault.redact(t) for t in request.input))
    messages = tuple(_message(message, vault.redact) for message in request.messages)
    return msgspec.structs.replace(request, messages=messages)


def _restored(response: ChatResponse, vault: Vault, masker: Redactor | None) -> ChatResponse:
    def change(text: str) -> str:
        return vault.restore(masker.mask(text) if masker is not None else text)

    return msgspec.structs.replace(response, message=_message(response.message, change))


def _message(message: Message, change: Callable[[str], str]) -> Message:
    parts = []
    for part in message.content:
        if isinstance(part, TextPart):
            part = msgspec.structs.replace(part, text=change(part.text))
        elif isinstance(part, ToolResultPart):
            part = msgspec.structs.replace(part, content=change(part.content))
        elif isinstance(part, ToolCallPart):
            part = msgspec.structs.replace(part, arguments=change(part.arguments))
        parts.append(part)
    return msgspec.structs.replace(message, content=tuple(parts))
