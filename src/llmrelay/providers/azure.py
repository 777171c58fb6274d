"""``azure``: Azure OpenAI deployments, through the OpenAI codecs and provider.

Azure serves the OpenAI wire format at other addresses: each deployment has its own path,
``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...`` (and
``/embeddings``), and the key travels in an ``api-key`` header instead of ``Authorization``. So this
module is :class:`~llmrelay.providers.openai.OpenAIProvider` with those two differences and
nothing else: same request encoding, stream decoding, error mapping and connection pool.

The target's ``model`` is the **deployment name** (Azure routes on it and ignores the body's
``model``, which is sent anyway). A wildcard alias's target may leave it out, so the matched name
picks the deployment (``azure/*`` reaches every deployment of the resource). ``base_url`` is the
resource's endpoint, ``https://<resource>.openai.azure.com``; it has no default.

Options: those of the ``openai`` provider, plus ``api_version``. Its default, ``2024-10-21``, is
the newest GA release of the data-plane inference API that uses deployment URLs: it has
``stream_options`` (the final usage chunk) and ``max_completion_tokens`` (which reasoning models
require), while preview versions are retired within months. So ``max_tokens_param: auto`` sends
``max_completion_tokens``; set ``max_tokens`` for an ``api_version`` older than
``2024-09-01-preview``, along with ``stream_usage: false``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import msgspec

from llmrelay.clock import Clock
from llmrelay.config import TargetConfig, TimeoutConfig
from llmrelay.providers.http import Upstream
from llmrelay.providers.keyring import KeyRing
from llmrelay.providers.openai import Endpoint, OpenAIOptions, OpenAIProvider, upstream_for
from llmrelay.stores.rates import RateLimits

DEFAULT_API_VERSION = "2024-10-21"


class AzureOptions(OpenAIOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    api_version: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$")] = (
        DEFAULT_API_VERSION
    )


class AzureProvider(OpenAIProvider):
    name = "azure"

    def __init__(self, *, model: str | None, upstream: Upstream, options: AzureOptions, clock: Clock):
        field = options.max_tokens_param
        super().__init__(
            model=model,
            upstream=upstream,
            options=options,
            clock=clock,
            max_tokens_field="max_completion_tokens" if field == "auto" else field,
        )
        self._query = "?api-version=" + quote(options.api_version, safe="")

    def _path(self, endpoint: Endpoint, model: str) -> str:
        return f"/openai/deployments/{quote(model, safe='')}{endpoint}{self._query}"


def create(
    target: TargetConfig, timeout: TimeoutConfig, clock: Clock, *, limits: RateLimits | None = None
) -> AzureProvider:
    options = msgspec.convert(target.options, AzureOptions, strict=False)  # `${VAR}` fills numbers
    if options.api != "chat_completions":
        raise msgspec.ValidationError(
            "azure targets speak Chat Completions only (`api: responses` is openai's)"
        )
    # Config validation requires a base_url for azure; the library's direct callers get the same.
    if not target.base_url:
        raise msgspec.ValidationError(
            "an azure target needs `base_url` (https://<resource>.openai.azure.com)"
        )
    upstream = upstream_for(
        target,
        timeout,
        options,
        provider="azure",
        keys=KeyRing.of(target, clock, limits),
        key_header="api-key",
        key_prefix="",
        base_url=target.base_url,
    )
    return AzureProvider(model=target.model, upstream=upstream, options=options, clock=clock)
