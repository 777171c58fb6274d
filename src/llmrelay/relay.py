"""``Relay``: the in-process face of llmrelay (the HTTP server is the other one, over the same pipeline).

::

    async with Relay.from_config("llmrelay.yaml") as relay:
        reply = await relay.chat("fast", [{"role": "user", "content": "Hi"}])
        async for chunk in relay.stream("fast", [{"role": "user", "content": "Hi"}]):
            print(chunk.text, end="")
        vectors = await relay.embed("embed", ["a", "b"])

Messages and options may be canonical values or the OpenAI-style dicts most code already has
(:mod:`llmrelay.chat_options` turns them into the canonical request, with the server's own checks).
The blocking API is :class:`llmrelay.sync.SyncRelay`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

from llmrelay.builder import build
from llmrelay.chat_options import ChatOptions, MessageInput, call_timeout, chat_request
from llmrelay.clock import Clock, SystemClock
from llmrelay.config import Config, load_config
from llmrelay.context import Context
from llmrelay.policies.cache import Cache
from llmrelay.pricing.cost import cost_at
from llmrelay.routing.patterns import ModelNames
from llmrelay.service import Request, Result
from llmrelay.stores.base import KV, Resource
from llmrelay.streams import ChatStream
from llmrelay.telemetry.metrics import Metrics
from llmrelay.token_count import TokenCount, count_tokens
from llmrelay.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Usage,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


class Relay:
    """The gateway in-process: every configured alias behind retries, timeouts, circuit breakers,
    failover and fallbacks, the same pipeline ``llmrelay serve`` runs.

    Build it with :meth:`from_config` (a YAML path or a dict) and use it inside ``async with``,
    which opens the provider connection pools and stores and closes them at the end; a call on a
    closed relay raises ``RuntimeError``. One relay serves any number of concurrent tasks.
    Errors are the classes of :mod:`llmrelay.errors` (``RateLimited``, ``AllTargetsFailed``, ...).
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
        server: bool = False,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        """``metrics``: where the pipeline counts (the server passes its Prometheus backend);
        by default nothing is counted. ``tracer``: an OpenTelemetry tracer for the call and
        attempt spans (else ``telemetry.otlp_endpoint`` makes one; without either, no tracing)."""
        self.config = config
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        # When every target is at its own rpm/tpm, the SDK queues the call (until its deadline);
        # the server waits at most the alias's `upstream_hold`, then answers 429.
        self._pipeline = build(
            config,
            clock=self.clock,
            rand=rand,
            hold_until_deadline=not server,
            metrics=self.metrics,
            tracer=tracer,
        )
        self._closed = False

    @classmethod
    def from_config(cls, source: str | Path | Mapping[str, Any], *, clock: Clock | None = None) -> Relay:
        """A relay for a YAML file path or a dict of the same shape (validated now)."""
        return cls(load_config(source), clock=clock)

    async def open(self) -> None:
        """Open connection pools and stores (``async with`` does it; a closed relay may reopen)."""
        self._closed = False
        pipeline = self._pipeline
        opened = await asyncio.gather(
            *(s.open() for s in self._stores()),
            *(p.open() for p in pipeline.providers),
            return_exceptions=True,
        )
        failed = next((result for result in opened if isinstance(result, BaseException)), None)
        if failed is not None:  # e.g. a key file that cannot be read: close what did open
            await self.aclose()
            raise failed
        if pipeline.logs is not None:
            pipeline.logs.attach()

    async def aclose(self) -> None:
        """Close connection pools and stores; later calls raise ``RuntimeError``."""
        self._closed = True
        pipeline = self._pipeline
        await asyncio.gather(*(s.aclose() for s in self._stores()), *(p.aclose() for p in pipeline.providers))
        if pipeline.flush is not None:
            await asyncio.to_thread(pipeline.flush)
        if pipeline.logs is not None:
            pipeline.logs.detach()
            await asyncio.to_thread(pipeline.logs.force_flush)

    def _stores(self) -> list[Resource]:
        pipeline = self._pipeline
        return [*pipeline.stores, *((pipeline.limits,) if pipeline.limits is not None else ())]

    def circuits(self) -> list[dict[str, Any]]:
        """Every target's circuit breaker state (``/admin/circuits``, metrics)."""
        return [breaker.snapshot() for breaker in self._pipeline.breakers]

    @property
    def cache(self) -> Cache | None:
        """The response cache when some alias caches (``/admin/cache``, ``llmrelay cache``)."""
        return self._pipeline.cache

    def total_timeout(self, model: str) -> float | None:
        """The configured ``timeout.total`` of the alias ``model`` resolves to (a dict lookup)."""
        return self._pipeline.total_for(model)

    def cost(self, target: str | None, usage: Usage) -> float | None:
        """USD for ``usage`` at the price of the target labelled ``target`` (the ``target`` of a
        response or stream); None when that target's price is unknown."""
        return cost_at(self._pipeline.prices, target, usage)

    async def budget_status(self, ctx: Context) -> dict[str, Any]:
        """The budgets ``ctx``'s caller counts against, with spend, reservations and resets
        (``{"budgets": []}`` without configured budgets): for ``GET /v1/key/info``."""
        budget = self._pipeline.budget
        return await budget.status(ctx) if budget is not None else {"budgets": []}

    @property
    def responses_kv(self) -> KV:
        """The state namespace that keeps stored ``/v1/responses`` answers (the server's)."""
        return self._pipeline.responses

    async def limits_report(self, ctx: Context) -> dict[str, Any]:
        """The caller's tier limits and headroom now (``GET /v1/key/info``); charges nothing."""
        pipeline = self._pipeline
        if pipeline.tenancy is None or pipeline.limits is None:
            return {"tier": ctx.tier, "limits": []}
        return await pipeline.tenancy.report(pipeline.limits, ctx)

    async def stores_ready(self) -> bool:
        """Whether every store of the pipeline answers (the server's ``/readyz``)."""
        answers = await asyncio.gather(*(s.ping() for s in self._stores()), return_exceptions=True)
        return all(answer is True for answer in answers)

    async def __aenter__(self) -> Relay:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def models(self) -> list[str]:
        """The configured model aliases."""
        return self._pipeline.router.aliases

    @property
    def model_names(self) -> ModelNames:
        """The configured names as requests resolve them (wildcard patterns included)."""
        return self._pipeline.router.names

    def context(self, *, timeout: float | None = None, **fields: Any) -> Context:
        """A fresh context on this relay's clock; ``timeout`` sets its deadline from now."""
        return Context(clock=self.clock, **fields).with_timeout(timeout)

    async def send(self, request: Request, ctx: Context | None = None) -> Result:
        """Run a canonical request through the pipeline (what the server and the methods use)."""
        if self._closed:
            raise RuntimeError("this Relay is closed: open it again (`async with relay:`) or make a new one")
        return await self._pipeline.service(request, ctx or self.context())

    async def count_tokens(self, request: ChatRequest, ctx: Context | None = None) -> TokenCount:
        """The input tokens ``request`` would take at its alias: the provider's own count where it
        has an endpoint for it, else an estimate (:mod:`llmrelay.token_count`)."""
        if self._closed:
            raise RuntimeError("this Relay is closed: open it again (`async with relay:`) or make a new one")
        return await count_tokens(self._pipeline.router, request, ctx or self.context())

    async def chat(
        self, model: str, messages: Sequence[MessageInput], **options: Unpack[ChatOptions]
    ) -> ChatResponse:
        """Send ``messages`` to the alias ``model`` and return the whole answer.

        ``messages`` are OpenAI-style dicts (``{"role": "user", "content": "Hi"}``) or
        :class:`~llmrelay.types.Message` values. Options (all optional): ``tools``,
        ``tool_choice``, ``parallel_tool_calls``, ``response_format``, ``temperature``, ``top_p``,
        ``max_tokens``, ``stop``, ``seed``, ``user``, ``extensions`` (provider-specific fields,
        e.g. ``{"openai": {"logprobs": True}}``) and ``timeout`` (total seconds for this call).
        The answer has ``text``, ``tool_calls``, ``finish_reason``, ``usage`` and ``target`` (which
        deployment answered). An unknown option is a ``TypeError``; a bad value is the server's
        :class:`~llmrelay.errors.InvalidRequest`; failures are :mod:`llmrelay.errors` classes.
        """
        request = chat_request(model, messages, options, stream=False)
        result = await self.send(request, self.context(timeout=call_timeout(options.get("timeout"))))
        assert isinstance(result, ChatResponse)
        return result

    def stream(
        self, model: str, messages: Sequence[MessageInput], **options: Unpack[ChatOptions]
    ) -> StreamCall:
        """A streamed answer: iterate it (``async for``); the call starts at the first iteration.

        Takes the arguments of :meth:`chat` (checked now, before anything is sent). Chunks carry
        ``text`` and, on the last, ``usage``; ``final()`` gives the joined answer once it ended.
        Failures before the first chunk are retried and fail over like :meth:`chat`; a failure
        after it raises :class:`~llmrelay.errors.StreamInterrupted`. ``async with`` (or reading to
        the end) closes the upstream stream.
        """
        request = chat_request(model, messages, options, stream=True)
        return StreamCall(self, request, self.context(timeout=call_timeout(options.get("timeout"))))

    async def embed(
        self,
        model: str,
        input: str | Sequence[str],
        *,
        dimensions: int | None = None,
        user: str | None = None,
        timeout: float | None = None,
    ) -> EmbeddingResponse:
        """Embed one text or several with the alias ``model``; ``vectors`` keep the input order.

        ``dimensions`` asks for shorter vectors where the model supports it; ``timeout`` is the
        total seconds for this call.
        """
        texts = (input,) if isinstance(input, str) else tuple(input)
        request = EmbeddingRequest(model=model, input=texts, dimensions=dimensions, user=user)
        result = await self.send(request, self.context(timeout=call_timeout(timeout)))
        assert isinstance(result, EmbeddingResponse)
        return result


class StreamCall:
    """The result of :meth:`Relay.stream`: an async iterator of chunks that opens lazily.

    ``async with`` (or reading to the end) closes the upstream stream; ``final()`` gives the
    aggregated answer once it has ended.
    """

    def __init__(self, relay: Relay, request: ChatRequest, ctx: Context) -> None:
        self._relay = relay
        self._request = request
        self._ctx = ctx
        self._stream: ChatStream | None = None
        self._closed = False

    async def start(self) -> ChatStream:
        """Send the request now; returns once the first chunk is in (the commit point)."""
        if self._stream is None:
            result = await self._relay.send(self._request, self._ctx)
            assert isinstance(result, ChatStream)
            self._stream = result
        return self._stream

    def __aiter__(self) -> StreamCall:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._closed:
            raise StopAsyncIteration
        stream = await self.start()
        return await anext(stream)

    async def aclose(self) -> None:
        self._closed = True
        if self._stream is not None:
            await self._stream.aclose()

    async def __aenter__(self) -> StreamCall:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def final(self) -> ChatResponse:
        if self._stream is None:
            raise RuntimeError("final() called before the stream was read")
        return self._stream.final()
