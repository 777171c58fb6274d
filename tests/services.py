"""Real backing services for tests: a missing one fails under CI=true, and is skipped elsewhere."""

from __future__ import annotations

import os
import socket

import pytest


def require(port: int, name: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not reachable on 127.0.0.1:{port} (required under CI=true)")
        pytest.skip(f"{name} is not reachable on 127.0.0.1:{port}; run scripts/services")
