"""Which request parameters a target cannot honour: passed through, refused (400), or dropped.

A request's unmodelled parameters travel in ``extensions``, namespaced by the provider format they
belong to: the OpenAI face keeps an OpenAI client's ``logprobs`` in ``extensions["openai"]``, the
Anthropic face a client's ``top_k`` in ``extensions["anthropic"]``, and SDK callers may set any
namespace. Each upstream codec merges only its own namespace, so without this module an OpenAI
client's ``logprobs`` sent to an alias served by Anthropic would vanish without a word. The rule:

- a target honours its own namespace (``openai`` passes every OpenAI parameter through, which
  covers every OpenAI-compatible server); the ``mock`` provider stands in for all of them and
  models none of their knobs, so nothing is foreign to it;
- parameters in another *provider's* namespace are foreign, except those the server itself handles
  (:data:`SERVER_HANDLED`: ``stream_options``, embeddings' ``encoding_format``) and values that
  ask for the default behaviour (``null``, ``n: 1``, ``logprobs: false``, ...: every target
  honours those). Namespaces that name no provider are nobody's knobs and are left alone;
- foreign parameters are a 400 naming them (``param`` is the first), unless the alias sets
  ``drop_params: true``: then they are dropped from this attempt's copy and a debug line says so.

:func:`foreign_params` is the pure decision; :func:`honour_or_drop` applies it once per attempt,
just before the provider is called (``builder``'s ``call_provider``), because a fallback may move
the same request to a provider of another format.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.types import ChatRequest, EmbeddingRequest

log = logging.getLogger("llmrelay.params")

PROVIDER_NAMESPACES = ("openai", "anthropic", "gemini")
"""Extension namespaces that hold a provider's parameters (the ``mock`` has none of its own)."""

SERVER_HANDLED: dict[str, frozenset[str]] = {
    "openai": frozenset({"stream_options", "encoding_format"}),
}
"""Parameters the server answers itself (usage chunk, embedding encoding): never sent upstream."""

_DEFAULTS: dict[str, dict[str, Any]] = {
    "openai": {
        "n": 1,
        "logprobs": False,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "logit_bias": {},
        "store": False,
    },
    "anthropic": {"thinking": {"type": "disabled"}},
}
"""Values that mean "as usual": a target that has no such parameter behaves like that anyway."""

_R = TypeVar("_R", bound=ChatRequest | EmbeddingRequest)


def foreign_params(request: ChatRequest | EmbeddingRequest, provider: str) -> list[str]:
    """The parameters of ``request`` that a ``provider`` target would not honour, in request order."""
    if provider == "mock":
        return []
    return [
        key
        for namespace in request.extensions
        if namespace in PROVIDER_NAMESPACES and namespace != provider
        for key in _foreign_keys(request.extension(namespace), namespace)
    ]


def _foreign_keys(knobs: dict[str, Any], namespace: str) -> list[str]:
    handled = SERVER_HANDLED.get(namespace, frozenset())
    defaults = _DEFAULTS.get(namespace, {})
    return [
        key
        for key, value in knobs.items()
        if key not in handled and value is not None and not _is_default(defaults, key, value)
    ]


def _is_default(defaults: dict[str, Any], key: str, value: Any) -> bool:
    if key not in defaults:
        return False
    default = defaults[key]
    # ``True == 1`` in Python, but ``n: true`` is not a count of one.
    return isinstance(value, bool) == isinstance(default, bool) and bool(value == default)


def honour_or_drop(request: _R, provider: str, *, drop_params: bool, alias: str, target: str) -> _R:
    """``request`` if ``provider`` honours all of it; else a 400, or (``drop_params``) a trimmed copy."""
    foreign = foreign_params(request, provider)
    if not foreign:
        return request
    names = ", ".join(f"`{name}`" for name in foreign)
    if not drop_params:
        raise InvalidRequest(
            f"target {target} ({provider}) cannot honour {names}: another provider's parameter."
            f" Remove it, or set `drop_params: true` on model {alias!r} to drop such parameters.",
            param=foreign[0],
        )
    log.debug("drop_params: model %r, target %s drops %s", alias, target, ", ".join(foreign))
    dropped = set(foreign)
    extensions = {
        namespace: (
            {k: v for k, v in knobs.items() if k not in dropped}
            if namespace in PROVIDER_NAMESPACES and namespace != provider
            else knobs
        )
        for namespace, knobs in request.extensions.items()
    }
    return msgspec.structs.replace(request, extensions=extensions)
