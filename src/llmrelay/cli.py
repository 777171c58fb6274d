"""The ``llmrelay`` command: ``serve``, ``chat`` and ``keys`` (``batch`` and ``bench`` join later).

Subcommands import what they need when they run, so ``llmrelay --help`` stays instant.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
import msgspec

from llmrelay.config import Config, environment_config, load_config, with_server_defaults
from llmrelay.errors import RelayError


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
@click.option("--port", "-p", type=int, default=None, help="Port [default: 4000].")
@click.option("--workers", "-w", type=int, default=None, help="Worker processes [default: 1].")
def serve(config_path: Path | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the OpenAI- and Anthropic-compatible gateway."""
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
    config = with_server_defaults(msgspec.structs.replace(config, server=server))
    if server.workers > 1 and config_path is not None:
        os.environ["LLMRELAY_CONFIG"] = str(config_path.resolve())
    click.echo(_banner(config), err=True)
    run_server(config, workers=server.workers)


def _banner(config: Config) -> str:
    base = f"http://{config.server.host}:{config.server.port}"
    first = config.models[0].name if config.models else "MODEL"
    auth = (
        "keys required (Authorization: Bearer <key>)"
        if config.auth_required
        else "open: no API key needed (set server.master_key to require keys)"
    )
    return "\n".join(
        [
            f"llmrelay listening on {base}  ({config.server.workers} worker(s))",
            f"  models: {', '.join(m.name for m in config.models)}",
            f"  auth:   {auth}",
            f"  state:  {config.state.url}",
            "  try:",
            f"    curl {base}/v1/chat/completions -H 'content-type: application/json' \\",
            f'      -d \'{{"model": "{first}", "messages": [{{"role": "user", "content": "Hello"}}]}}\'',
            f'    OpenAI SDK:    OpenAI(base_url="{base}/v1", api_key="<key or anything>")',
            f'    Anthropic SDK: Anthropic(base_url="{base}", api_key="<key or anything>")',
        ]
    )
