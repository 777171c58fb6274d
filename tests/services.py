"""Real backing services and data files for tests: a missing one fails under CI=true, and is
skipped elsewhere (a CI run must not go green by testing less)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest


def _missing(message: str, hint: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (required under CI=true)")
    pytest.skip(f"{message}; {hint}")


def require(port: int, name: str) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        _missing(f"{name} is not reachable on 127.0.0.1:{port}", "run scripts/services")


def require_file(path: Path, name: str, *, hint: str) -> Path:
    if not path.is_file():
        _missing(f"{name} not found at {path}", hint)
    return path
