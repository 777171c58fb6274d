"""``SyncRelay``: the blocking API, a thin wrapper that runs :class:`Relay` on a private loop.

Each method submits the async method's coroutine to an event loop running in one daemon thread and
waits for it; nothing is written twice. Use it from scripts and sync web frameworks::

    with SyncRelay.from_config("llmrelay.yaml") as relay:
        print(relay.chat("fast", [{"role": "user", "content": "Hi"}]).text)
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

from llmrelay.chat_options import ChatOptions, MessageInput
from llmrelay.config import load_config
from llmrelay.relay import Relay, StreamCall
from llmrelay.types import ChatChunk, Usage

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[Relay, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncRelay, P], R]:
    # wraps() keeps the name, the docstring and (through __wrapped__) the signature that help()
    # and IDEs show: `chat(self, model, messages, **options)`, not `(*args, **kwargs)`.
    @functools.wraps(method)
    def run(self: SyncRelay, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self._check_open()
        return self._run(method(self.relay, *args, **kwargs))

    run.__module__, run.__qualname__ = __name__, f"SyncRelay.{method.__name__}"
    return run


class SyncRelay:
    """:class:`~llmrelay.relay.Relay`, blocking: the same methods, arguments and errors.

    Use it with ``with`` (or call :meth:`close`): it owns an event loop in a daemon thread, and a
    call after :meth:`close` raises ``RuntimeError``. Safe to share between threads.
    """

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmrelay-sync", daemon=True)
        self._thread.start()
        self._run(relay.open())

    @classmethod
    def from_config(cls, source: str | Path | Mapping[str, Any]) -> SyncRelay:
        """A relay for a YAML file path or a dict of the same shape (validated now), opened."""
        return cls(Relay(load_config(source)))

    def _check_open(self) -> None:
        if self._loop.is_closed():
            raise RuntimeError("this SyncRelay is closed: make a new one")

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    chat = _blocking(Relay.chat)
    embed = _blocking(Relay.embed)

    def cost(self, target: str | None, usage: Usage) -> float | None:
        """:meth:`Relay.cost`: USD for ``usage`` at that target's price (None when unknown)."""
        return self.relay.cost(target, usage)

    def stream(
        self, model: str, messages: Sequence[MessageInput], **options: Unpack[ChatOptions]
    ) -> Iterator[ChatChunk]:
        """Chunks as they arrive; leaving the loop early closes the upstream stream.

        Takes the arguments of :meth:`Relay.chat <llmrelay.relay.Relay.chat>`, checked now; the
        call starts at the first iteration.
        """
        self._check_open()
        return self._chunks(self.relay.stream(model, messages, **options))

    def _chunks(self, call: StreamCall) -> Iterator[ChatChunk]:
        try:
            while True:
                try:
                    yield self._run(call.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(call.aclose())

    def close(self) -> None:
        """Close the relay and stop its loop; closing twice is harmless."""
        if self._loop.is_closed():
            return
        self._run(self.relay.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncRelay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
