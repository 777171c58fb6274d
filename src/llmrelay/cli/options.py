"""What the ``llmrelay`` subcommands share: the ``--config`` option, the config it names, JSON output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import msgspec

from llmrelay.config import Config, load_config
from llmrelay.config_environment import environment_config


def config_for(path: Path | None) -> Config:
    """The config at ``path``, or the zero-config default (``mock`` plus keys found in env)."""
    return load_config(path) if path else environment_config()


CONFIG_OPTION = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Config file (default: a `mock` model plus providers whose keys are in the environment).",
)


def echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def fail(message: str) -> NoReturn:
    """End the command with ``error: <message>`` on stderr and exit status 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)
