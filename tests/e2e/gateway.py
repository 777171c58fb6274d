"""Run ``llmrelay serve`` as a real subprocess on a loopback port for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

LLMRELAY = Path(sys.executable).with_name("llmrelay")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def access_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == "request":
                    lines.append(record)
        return lines


@asynccontextmanager
async def run_gateway(
    config: dict[str, Any], tmp: Path, *, extra_args: tuple[str, ...] = ()
) -> AsyncIterator[Gateway]:
    """Start the server with ``config``; wait until ``/healthz`` answers; stop it by PID."""
    config_path = tmp / "llmrelay.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    log_path = tmp / "gateway.log"
    env = {**os.environ, "LLMRELAY_HOME": str(tmp / "home")}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(LLMRELAY),
            "serve",
            "-c",
            str(config_path),
            "--port",
            str(port),
            *extra_args,
            stdout=log,
            stderr=log,
            env=env,
        )
    tls = bool(config.get("server", {}).get("tls"))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        await _wait_until_healthy(url, process, log_path)
        yield Gateway(url, process, log_path)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_until_healthy(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                raise RuntimeError(f"gateway exited early:\n{_read(log)}")
            try:
                # readiness only: a TLS test checks the certificate itself, with its own client
                async with session.get(url + "/healthz", ssl=False) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)  # polling a starting process; bounded to 15 s
    raise RuntimeError(f"gateway did not become healthy:\n{_read(log)}")


def _read(path: Path) -> str:
    return path.read_text(errors="replace")
