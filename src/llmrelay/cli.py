"""The ``llmrelay`` command: ``serve``, ``chat`` and ``keys`` (``batch`` and ``bench`` join later).

Subcommands import what they need when they run, so ``llmrelay --help`` stays instant.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from llmrelay.config import Config, environment_config, load_config, with_server_defaults
from llmrelay.errors import RelayError

if TYPE_CHECKING:
    from llmrelay.keys import KeyService


def _config(path: Path | None) -> Config:
    return load_config(path) if path else environment_config()


_CONFIG_OPTION = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Config file (default: a `mock` model plus providers whose keys are in the environment).",
)


@click.group()
@click.version_option(package_name="llmrelay")
def main() -> None:
    """llmrelay: one API in front of OpenAI, Anthropic, Gemini and any OpenAI-compatible server."""


@main.command()
@click.argument("prompt")
@click.option("--model", "-m", default="mock", show_default=True, help="Model alias to call.")
@_CONFIG_OPTION
@click.option("--system", "-s", default=None, help="System prompt.")
@click.option("--stream/--no-stream", default=True, show_default=True)
def chat(prompt: str, model: str, config_path: Path | None, system: str | None, stream: bool) -> None:
    """Send PROMPT to MODEL and print the answer."""
    from llmrelay.relay import Relay

    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]

    async def run() -> None:
        async with Relay(_config(config_path)) as relay:
            if stream:
                async with relay.stream(model, messages) as call:
                    async for chunk in call:
                        click.echo(chunk.text, nl=False)
                click.echo()
            else:
                click.echo((await relay.chat(model, messages)).text)

    try:
        asyncio.run(run())
    except RelayError as err:
        click.echo(f"error: {err.message}", err=True)
        sys.exit(1)


@main.command()
@_CONFIG_OPTION
@click.option("--host", default=None, help="Interface to listen on [default: 127.0.0.1].")
@click.option("--port", "-p", type=click.IntRange(1, 65535), default=None, help="Port [default: 4000].")
@click.option(
    "--workers", "-w", type=click.IntRange(min=1), default=None, help="Worker processes [default: 1]."
)
def serve(config_path: Path | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the OpenAI- and Anthropic-compatible gateway."""
    from llmrelay.server.listen import ListenError
    from llmrelay.server.run import serve as run_server

    try:
        config = _config(config_path)
    except RelayError as err:
        click.echo(f"error: {err.message}", err=True)
        sys.exit(2)
    server = msgspec.structs.replace(
        config.server,
        host=host or config.server.host,
        port=port or config.server.port,
        workers=workers or config.server.workers,
    )
    config = msgspec.structs.replace(config, server=server)
    if server.workers > 1 and config_path is not None:
        os.environ["LLMRELAY_CONFIG"] = str(config_path.resolve())
    try:
        run_server(config, workers=server.workers, announce=lambda text: click.echo(text, err=True))
    except (RelayError, ListenError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)


@main.group()
def keys() -> None:
    """Manage virtual keys in the gateway's state store (the one `serve` uses)."""


def _with_keys(config_path: Path | None, action: Callable[[KeyService], Awaitable[Any]]) -> Any:
    from llmrelay.clock import SystemClock
    from llmrelay.keys import KeyService

    async def run() -> Any:
        config = with_server_defaults(_config(config_path))
        service = KeyService.for_config(config, clock=SystemClock())
        await service.open()
        try:
            return await action(service)
        finally:
            await service.aclose()

    try:
        return asyncio.run(run())
    except RelayError as err:
        click.echo(f"error: {err.message}", err=True)
        sys.exit(1)


def _echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


@keys.command("create")
@_CONFIG_OPTION
@click.option("--name", default=None)
@click.option("--models", default="", help="Comma-separated aliases this key may use (default: all).")
@click.option("--tier", default=None)
@click.option("--metadata", "-m", multiple=True, help="key=value, repeatable (user, team, ...).")
@click.option("--expires-in", type=float, default=None, help="Seconds until the key expires.")
def keys_create(
    config_path: Path | None,
    name: str | None,
    models: str,
    tier: str | None,
    metadata: tuple[str, ...],
    expires_in: float | None,
) -> None:
    """Create a key and print it (the secret is shown this once)."""
    pairs = dict(item.partition("=")[::2] for item in metadata)
    expires_at = time.time() + expires_in if expires_in else None

    async def create(service: KeyService) -> dict[str, Any]:
        secret, key = await service.create(
            name=name,
            models=[m for m in models.split(",") if m],
            tier=tier,
            metadata=pairs,
            expires_at=expires_at,
        )
        return {"key": secret, **key.public()}

    _echo_json(_with_keys(config_path, create))


@keys.command("list")
@_CONFIG_OPTION
def keys_list(config_path: Path | None) -> None:
    """List keys (never their secrets)."""

    async def list_all(service: KeyService) -> list[dict[str, Any]]:
        return [k.public() for k in await service.list()]

    _echo_json(_with_keys(config_path, list_all))


@keys.command("rotate")
@_CONFIG_OPTION
@click.argument("key_id")
@click.option(
    "--grace", type=float, default=3600.0, show_default=True, help="Seconds the old secret stays valid."
)
def keys_rotate(config_path: Path | None, key_id: str, grace: float) -> None:
    """Issue a new secret for KEY_ID."""

    async def rotate(service: KeyService) -> dict[str, Any]:
        secret, key = await service.rotate(key_id, grace_seconds=grace)
        return {"key": secret, **key.public()}

    _echo_json(_with_keys(config_path, rotate))


@keys.command("revoke")
@_CONFIG_OPTION
@click.argument("key_id")
def keys_revoke(config_path: Path | None, key_id: str) -> None:
    """Revoke KEY_ID at once."""

    async def revoke(service: KeyService) -> dict[str, Any]:
        return (await service.revoke(key_id)).public()

    _echo_json(_with_keys(config_path, revoke))
