"""Run an aiohttp application on an ephemeral loopback port for the length of a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application, *, cancel_on_disconnect: bool = False) -> AsyncIterator[str]:
    """Start ``app`` on 127.0.0.1 and yield its base URL (``http://127.0.0.1:PORT``).

    ``cancel_on_disconnect`` cancels a handler whose client went away (aiohttp's
    ``handler_cancellation``), so a fake can tell that the gateway dropped its request.
    """
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=1.0,
        handler_cancellation=cancel_on_disconnect,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
    port = sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
