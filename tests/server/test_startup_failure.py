"""A start that fails part-way closes what it had opened: an open SQLite store's thread would keep
the failed process from exiting (seen as a server that printed "startup failed" and hung)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from llmrelay.config import load_config
from llmrelay.relay import Relay
from llmrelay.server import app as app_module


def _sqlite_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name and t.is_alive()}


async def test_a_failed_start_closes_the_stores_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        {
            "server": {"master_key": "sk-master-startup-0123456789"},
            "state": {"url": f"sqlite:///{tmp_path}/state.db"},
            "models": [{"name": "mock", "targets": [{"provider": "mock"}]}],
        }
    )

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a step after the stores opened fails")

    monkeypatch.setattr(app_module, "record_config", broken)
    app = app_module.create_app(Relay(config, server=True))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    before = _sqlite_threads()
    await app({"type": "lifespan"}, receive, send)
    assert sent[-1]["type"] == "lifespan.startup.failed"
    for thread in _sqlite_threads() - before:
        thread.join(timeout=5)  # a closed connection's thread ends once it has run its last task
    assert _sqlite_threads() <= before  # the key store (and every other store) was closed
