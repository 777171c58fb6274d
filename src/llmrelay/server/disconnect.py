"""Stop the work of a request whose client went away, at any stage.

ASGI servers do not cancel an application when its client disconnects: they only answer the next
``receive()`` with ``http.disconnect``. :class:`DisconnectGuard` cancels the request's own task as
soon as the client is gone, so a pending upstream call (before the first token, or a unary answer
still being generated) or a stream being relayed is cancelled at once, which closes the upstream
connection. The request then ends as ``client_closed`` (logged with status 499, nginx's code for
it).

How it learns of the disconnect: ``llmrelay serve``'s protocol
(:mod:`llmrelay.server.header_limit`) gives each request a :class:`DisconnectSignal` in its
scope's extensions and fires it when the connection is lost, so the guard is a callback, with no
task per request. Under another ASGI server the guard runs one small task that waits for
``http.disconnect`` instead.

A cancellation that does not come from the guard (the server's graceful-shutdown limit) is told
apart by :meth:`DisconnectGuard.client_left`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Receive, Scope

CLIENT_CLOSED = 499
EXTENSION = "llmrelay.disconnect"
"""The scope extension that holds a request's :class:`DisconnectSignal`."""


class DisconnectSignal:
    """Fired once, by the server's protocol, when the request's connection is lost."""

    __slots__ = ("_callbacks", "fired")

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self.fired = False

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the connection is lost (at once, if it is lost already)."""
        if self.fired:
            callback()
        else:
            self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def fire(self) -> None:
        if not self.fired:
            self.fired = True
            callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                callback()


def disconnect_signal(scope: Scope) -> DisconnectSignal | None:
    """The request's signal when its server gives one (``llmrelay serve`` does)."""
    signal = scope.get("extensions", {}).get(EXTENSION)
    return signal if isinstance(signal, DisconnectSignal) else None


class DisconnectGuard:
    def __init__(self, receive: Receive, signal: DisconnectSignal | None = None) -> None:
        task = asyncio.current_task()
        assert task is not None, "a DisconnectGuard belongs to a request's task"
        self._task = task
        self._left = False
        self._signal = signal
        self._watcher: asyncio.Task[None] | None = None
        if signal is not None:
            signal.subscribe(self._client_left)
        else:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._client_left()

    def _client_left(self) -> None:
        self._left = True
        self._task.cancel()

    @property
    def client_left(self) -> bool:
        """True once the client disconnected (the request's task was then cancelled by us)."""
        return self._left

    def absorb(self) -> bool:
        """On a ``CancelledError`` in the request's task: was it ours? If so, consume it."""
        if self._left:
            self._task.uncancel()
            return True
        return False

    def stop(self) -> None:
        """The request is answered: stop watching (idempotent)."""
        if self._signal is not None:
            self._signal.unsubscribe(self._client_left)
        elif self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
