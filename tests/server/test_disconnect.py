"""The disconnect guard on both of its sources: the server's signal (a callback, no task) and, under
another ASGI server, ``http.disconnect`` from ``receive``. Either way the request's task is
cancelled once, the cancellation is told apart from others, and a stopped guard does nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmrelay.server.disconnect import EXTENSION, DisconnectGuard, DisconnectSignal, disconnect_signal


async def _pending() -> None:
    await asyncio.Event().wait()


async def test_the_signal_cancels_the_request_and_the_guard_absorbs_it() -> None:
    signal = DisconnectSignal()
    tasks_before = len(asyncio.all_tasks())
    guard = DisconnectGuard(_never_receive, signal)
    assert len(asyncio.all_tasks()) == tasks_before  # no watcher task
    asyncio.get_running_loop().call_soon(signal.fire)
    with pytest.raises(asyncio.CancelledError):
        await _pending()
    assert guard.client_left and guard.absorb()


async def test_a_stopped_guard_ignores_the_signal_and_a_late_guard_fires_at_once() -> None:
    signal = DisconnectSignal()
    guard = DisconnectGuard(_never_receive, signal)
    guard.stop()
    signal.fire()
    await asyncio.sleep(0)  # a cancellation would land here
    assert not guard.client_left and not guard.absorb()
    late = DisconnectGuard(_never_receive, signal)  # the client left before the guard started
    with pytest.raises(asyncio.CancelledError):
        await _pending()
    assert late.client_left and late.absorb()


async def test_without_a_signal_http_disconnect_from_receive_cancels() -> None:
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    guard = DisconnectGuard(receive)
    asyncio.get_running_loop().call_soon(left.set)
    with pytest.raises(asyncio.CancelledError):
        await _pending()
    assert guard.absorb()


async def test_the_signal_is_found_in_the_scope_extensions() -> None:
    signal = DisconnectSignal()
    assert disconnect_signal({"extensions": {EXTENSION: signal}}) is signal
    assert disconnect_signal({"type": "http"}) is None
    assert disconnect_signal({"extensions": {EXTENSION: "forged"}}) is None


async def _never_receive() -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError
