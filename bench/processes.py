"""Processes under test for the benchmark: start on a core, wait for the port, read CPU and RSS.

Linux only (``taskset``, ``/proc``). Every process started here is ended by its PID, and only
127.0.0.1 ports are used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if (os.cpu_count() or 1) > 1 else argv


@contextmanager
def process(argv: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Start ``argv``, wait until ``port`` accepts connections, yield its PID, end it by PID."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited early; see {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)  # polling a starting process, bounded by the loop
        else:
            raise SystemExit(f"{argv} did not start listening; see {log}")
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
