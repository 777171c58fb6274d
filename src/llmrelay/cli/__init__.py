"""The ``llmrelay`` command: ``serve``, ``chat``, ``keys``, ``usage``, ``db``, ``cache`` and ``alerts``
(``batch`` and ``bench`` join later).

Subcommands import what they need when they run, so ``llmrelay --help`` stays instant.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from llmrelay.cli.cache import cache
from llmrelay.cli.keys import keys
from llmrelay.cli.options import CONFIG_OPTION, config_for, echo_json, fail
from llmrelay.config_environment import with_server_defaults
from llmrelay.errors import RelayError


@click.group()
@click.version_option(package_name="llmrelay")
def main() -> None:
    """llmrelay: one API in front of OpenAI, Anthropic, Gemini and any OpenAI-compatible server."""


@main.command()
@click.argument("prompt")
@click.option("--model", "-m", default="mock", show_default=True, help="Model alias to call.")
@CONFIG_OPTION
@click.option("--system", "-s", default=None, help="System prompt.")
@click.option("--stream/--no-stream", default=True, show_default=True)
def chat(prompt: str, model: str, config_path: Path | None, system: str | None, stream: bool) -> None:
    """Send PROMPT to MODEL and print the answer (PROMPT `-` reads it from stdin)."""
    from llmrelay.relay import Relay

    if prompt == "-":
        prompt = sys.stdin.read().removesuffix("\n")
        if not prompt.strip():
            raise click.UsageError("no prompt on stdin (PROMPT `-` reads it from there)")
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    # Whether stdout sits mid-line: an error after some streamed text must start on a line of its
    # own, or a terminal shows "a berror: ...".
    mid_line = False

    async def run() -> None:
        nonlocal mid_line
        async with Relay(config_for(config_path)) as relay:
            if stream:
                async with relay.stream(model, messages) as call:
                    async for chunk in call:
                        if chunk.text:
                            click.echo(chunk.text, nl=False)
                            mid_line = not chunk.text.endswith("\n")
                click.echo()
                mid_line = False
            else:
                click.echo((await relay.chat(model, messages)).text)

    try:
        asyncio.run(run())
    except RelayError as err:
        if mid_line:
            click.echo()
        fail(err.message)


@main.command()
@CONFIG_OPTION
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
        config = config_for(config_path)
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
        fail(str(err))


@main.command()
@CONFIG_OPTION
@click.option(
    "--group-by",
    "-g",
    default=None,
    help="key, user, team, model, alias, target, day or tag:<name> (default: the total only).",
)
@click.option("--from", "since", default=None, help="Epoch seconds or ISO date / date-time (UTC).")
@click.option("--to", "until", default=None, help="Epoch seconds or ISO date / date-time (UTC), exclusive.")
@click.option(
    "--format", "form", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
def usage(
    config_path: Path | None, group_by: str | None, since: str | None, until: str | None, form: str
) -> None:
    """Requests, tokens and cost from the usage ledger at the state URL (what `serve` records)."""
    from llmrelay.ledger import UsageQuery, open_ledger
    from llmrelay.ledger.report import parse_time, report, to_csv, to_table

    async def run() -> dict[str, Any]:
        config = with_server_defaults(config_for(config_path))
        query = UsageQuery.parse(group_by, parse_time(since, "from"), parse_time(until, "to"))
        store = open_ledger(config.state.url or "memory://")
        await store.open()
        try:
            return await report(store, query)
        finally:
            await store.aclose()

    try:
        payload = asyncio.run(run())
    except RelayError as err:
        fail(err.message)
    except OSError as err:
        fail(f"cannot read the ledger: {err.strerror or err}")
    if form == "json":
        echo_json(payload)
    elif form == "csv":
        click.echo(to_csv(payload), nl=False)
    else:
        click.echo(to_table(payload))


@main.group()
def db() -> None:
    """The gateway's state database (`state.url`)."""


@db.command("migrate")
@CONFIG_OPTION
def db_migrate(config_path: Path | None) -> None:
    """Apply pending PostgreSQL migrations now (`serve` applies them at start-up too).

    Running it again applies nothing. SQLite state needs no migration: its stores create their
    tables when they open.
    """
    from llmrelay.stores.postgres import is_postgres, migrate

    try:
        config = with_server_defaults(config_for(config_path))
        url = config.state.url
        if not is_postgres(url):
            click.echo(
                f"nothing to migrate: {(url or 'memory://').partition(':')[0]} state needs no migrations"
            )
            return
        assert url is not None
        applied = asyncio.run(migrate(url))
    except RelayError as err:
        fail(err.message)
    except OSError as err:
        fail(f"cannot reach the PostgreSQL state database: {err.strerror or err}")
    echo_json({"applied": applied})


@main.group()
def alerts() -> None:
    """Alert rules (`alerts:` in the config)."""


@alerts.command("rules")
@CONFIG_OPTION
def alerts_rules(config_path: Path | None) -> None:
    """Print the config's alert rules as a Prometheus rules file (YAML), for Alertmanager users."""
    import yaml

    from llmrelay.alerts.prometheus_rules import rules_file

    config = config_for(config_path)
    if config.alerts is None:
        fail("the config has no `alerts:` section")
    click.echo(yaml.safe_dump(rules_file(config.alerts), sort_keys=False, width=200), nl=False)


main.add_command(keys)
main.add_command(cache)
