"""Stop the work of a request whose client went away, at any stage.

ASGI servers do not cancel an application when its client disconnects: they only answer the next
``receive()`` with ``http.disconnect``. :class:`DisconnectGuard` runs one small task per request
that waits for that message and then cancels the request's own task, so a pending upstream call
(before the first token, or a unary answer still being generated) or a stream being relayed is
cancelled at once, which closes the upstream connection. The request then ends as
``client_closed`` (logged with status 499, nginx's code for it).

A cancellation that does not come from the guard (the server's graceful-shutdown limit) is told
apart by :meth:`DisconnectGuard.client_left`.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive

CLIENT_CLOSED = 499


class DisconnectGuard:
    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None, "a DisconnectGuard belongs to a request's task"
        self._task = task
        self._left = False
        self._watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
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
        if not self._watcher.done():
            self._watcher.cancel()
