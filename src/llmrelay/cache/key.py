"""The exact cache key: a hash of everything in a request that can change its answer, per tenant.

The canonical request is normalised first: ``stream``, ``user`` and the parameters the server
handles itself (``stream_options``, ``encoding_format``: :data:`~llmrelay.wire.foreign_params.
SERVER_HANDLED`) are dropped, since a streamed and a unary call get the same answer and ``user`` is
a tracking id; everything else stays, because all
of it reaches the model: the model name as requested (a wildcard alias's names differ), every
message including the system prompt and earlier turns, tools, tool choice, response format,
temperature, top_p, max tokens, stop, seed, reasoning and provider extensions. Dict keys are
sorted, so two clients that order a JSON schema's keys differently share an entry.

The tenant (:func:`tenant`) is hashed in with the request: another tenant's identical request
has another key, so no lookup can ever reach its entry.
"""

from __future__ import annotations

import hashlib

import msgspec

from llmrelay.cache.settings import Scope
from llmrelay.context import Context
from llmrelay.types import ChatRequest, EmbeddingRequest, Extensions
from llmrelay.wire.foreign_params import SERVER_HANDLED

VERSION = "c1"
"""Bumped when the key's inputs or the entry format change, so old entries are never misread."""

_encode = msgspec.json.Encoder(order="sorted").encode


def tenant(ctx: Context, scope: Scope) -> str:
    """Who may share an entry: every caller, a team, or one virtual key (the default)."""
    if scope == "shared":
        return "*"
    if scope == "team":
        team = ctx.tags.get("team")
        if team:
            return "team:" + team
    return "key:" + (ctx.principal or "")


def exact_key(request: ChatRequest | EmbeddingRequest, tenant: str) -> str:
    extensions = _answer_relevant(request.extensions)
    if isinstance(request, ChatRequest):
        if request.stream or request.user is not None or extensions is not request.extensions:
            request = msgspec.structs.replace(request, stream=False, user=None, extensions=extensions)
    elif request.user is not None or extensions is not request.extensions:
        request = msgspec.structs.replace(request, user=None, extensions=extensions)
    digest = hashlib.sha256(_encode((VERSION, tenant, request))).hexdigest()
    return f"{VERSION}:{digest}"


def _answer_relevant(extensions: Extensions) -> Extensions:
    """``extensions`` without what the server handles (the same mapping when there is none)."""
    if not any(name in SERVER_HANDLED.get(ns, ()) for ns, fields in extensions.items() for name in fields):
        return extensions
    kept = {
        ns: {name: value for name, value in fields.items() if name not in SERVER_HANDLED.get(ns, ())}
        for ns, fields in extensions.items()
    }
    return {ns: fields for ns, fields in kept.items() if fields}
