"""``SyncRelay``: the blocking API, a thin wrapper that runs :class:`Relay` on a private loop.

Each method submits the async method's coroutine to an event loop running in one daemon thread and
waits for it; nothing is written twice. Use it from scripts and sync web frameworks::

    with SyncRelay.from_config("llmrelay.yaml") as relay:
        print(relay.chat("fast", [{"role": "user", "content": "Hi"}]).text)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

from llmrelay.config import load_config
from llmrelay.relay import ChatOptions, MessageInput, Relay
from llmrelay.types import ChatChunk

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[Relay, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncRelay, P], R]:
    def run(self: SyncRelay, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(method(self.relay, *args, **kwargs))

    run.__name__, run.__doc__ = method.__name__, method.__doc__
    return run


class SyncRelay:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmrelay-sync", daemon=True)
        self._thread.start()
        self._run(relay.open())

    @classmethod
    def from_config(cls, source: str | Path | Mapping[str, Any]) -> SyncRelay:
        return cls(Relay(load_config(source)))

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    chat = _blocking(Relay.chat)
    embed = _blocking(Relay.embed)

    def stream(
        self, model: str, messages: Sequence[MessageInput], **options: Unpack[ChatOptions]
    ) -> Iterator[ChatChunk]:
        """Chunks as they arrive; leaving the loop early closes the upstream stream."""
        call = self.relay.stream(model, messages, **options)
        try:
            while True:
                try:
                    yield self._run(call.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(call.aclose())

    def close(self) -> None:
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
