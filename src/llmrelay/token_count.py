"""How many input tokens a request would take at an alias, without running it.

The server's ``POST /v1/messages/count_tokens`` and ``POST /v1/tokens/count`` (and
:meth:`llmrelay.relay.Relay.count_tokens`) ask the alias's first target: a provider with a counting
endpoint of its own answers with the provider's figure (Anthropic ``count_tokens``, Gemini
``countTokens``: ``source="provider"``); any other (OpenAI-compatible servers, the mock) gets the
calibrated estimate of :mod:`llmrelay.pricing.tokens` (``source="estimate"``). So does a provider
whose endpoint is down or refuses the gateway's key (an error the classifier would fail over on): a
count is advice, and an estimate beats an error. A 4xx about the request itself still reaches the
caller. Counting is not a chat call: it runs no policy (no retries, breaker, idempotency) and is
not billed.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from llmrelay.classify import classify
from llmrelay.context import Context
from llmrelay.errors import RelayError
from llmrelay.pricing.tokens import estimate_input_tokens
from llmrelay.routing.patterns import fill
from llmrelay.routing.router import Router
from llmrelay.types import ChatRequest


class TokenCount(msgspec.Struct, frozen=True):
    input_tokens: int
    source: Literal["provider", "estimate"]


async def count_tokens(router: Router, request: ChatRequest, ctx: Context) -> TokenCount:
    """The input tokens of ``request`` at the alias ``request.model`` names (404 when none)."""
    route, captured = router.route(request.model)
    target = route.targets[0]
    if captured is not None and target.model is not None:
        request = msgspec.structs.replace(request, model=fill(target.model, captured))
    try:
        counted = await target.provider.count_tokens(request, ctx.replace(target=target.label))
    except RelayError as err:
        if not classify(err).failover:
            raise
        counted = None
    if counted is None:
        return TokenCount(input_tokens=estimate_input_tokens(request), source="estimate")
    return TokenCount(input_tokens=counted, source="provider")
