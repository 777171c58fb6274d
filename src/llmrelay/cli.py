"""The ``llmrelay`` command: ``serve``, ``chat``, ``keys``, ``usage``, ``db``, ``cache`` and ``alerts``
(``batch`` and ``bench`` join later).

Subcommands import what they need when they run, so ``llmrelay --help`` stays instant.
"""

from __future__ import annotations

import asyncio
import math
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
        async with Relay(_config(config_path)) as relay:
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


def _with_keys(config_path: Path | None, action: Callable[[KeyService, Config], Awaitable[Any]]) -> Any:
    from llmrelay.clock import SystemClock
    from llmrelay.keys import KeyService

    async def run() -> Any:
        config = with_server_defaults(_config(config_path))
        service = KeyService.for_config(config, clock=SystemClock())
        await service.open()
        try:
            return await action(service, config)
        finally:
            await service.aclose()

    try:
        return asyncio.run(run())
    except RelayError as err:
        click.echo(f"error: {err.message}", err=True)
        sys.exit(1)


def _echo_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def _positive_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    # 0 used to mean "never" and a negative number made a key that was born expired.
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a number of seconds > 0 (omit it for no expiry), not {value:g}")
    return value


def _pairs(ctx: click.Context, param: click.Parameter, items: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}")
        pairs[name.strip()] = value
    return pairs


def _cli_actor() -> str:
    """Who the audit log names for a change made with this command: the OS user."""
    import getpass

    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "cli:unknown"


@keys.command("create")
@_CONFIG_OPTION
@click.option("--name", default=None)
@click.option(
    "--models",
    default="",
    help="Comma-separated aliases this key may use (default: all). Names not in the config are kept,"
    " with a warning.",
)
@click.option("--tier", default=None)
# No -m: in `llmrelay chat` it is --model.
@click.option("--metadata", multiple=True, callback=_pairs, help="key=value, repeatable (user, team, ...).")
@click.option(
    "--expires-in",
    type=float,
    default=None,
    callback=_positive_seconds,
    help="Seconds until the key expires, > 0 (default: never).",
)
@click.option("--scope", "scopes", multiple=True, help="admin or admin:read (the admin API), repeatable.")
@click.option(
    "--route", "routes", multiple=True, help="A model route the key may call (default: all), repeatable."
)
@click.option(
    "--ip", "ips", multiple=True, help="A CIDR the caller must come from (default: anywhere), repeatable."
)
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Cap on max_tokens per request.")
def keys_create(
    config_path: Path | None,
    name: str | None,
    models: str,
    tier: str | None,
    metadata: dict[str, str],
    expires_in: float | None,
    scopes: tuple[str, ...],
    routes: tuple[str, ...],
    ips: tuple[str, ...],
    max_tokens: int | None,
) -> None:
    """Create a key and print it (the secret is shown this once). Scopes, routes, networks and
    the token cap are described in the README ("Virtual keys")."""
    from llmrelay.keys.model import model_names

    aliases = model_names(models.split(","))
    expires_at = time.time() + expires_in if expires_in is not None else None

    async def create(service: KeyService, config: Config) -> dict[str, Any]:
        # A warning, not an error: keys may be made before their aliases. A name counts as known
        # when it resolves as a request would (a pattern serves it) or is a configured pattern.
        for alias in aliases:
            if config.model(alias) is None:
                click.echo(
                    f"warning: no model alias `{alias}` in the config; the key lists it anyway", err=True
                )
        secret, key = await service.create(
            name=name,
            models=aliases,
            tier=tier,
            metadata=metadata,
            expires_at=expires_at,
            scopes=scopes,
            routes=routes,
            ips=ips,
            max_tokens=max_tokens,
            actor=_cli_actor(),
        )
        return {"key": secret, **key.public()}

    _echo_json(_with_keys(config_path, create))


@keys.command("list")
@_CONFIG_OPTION
def keys_list(config_path: Path | None) -> None:
    """List keys (never their secrets)."""

    async def list_all(service: KeyService, config: Config) -> list[dict[str, Any]]:
        return [k.public() for k in await service.list()]

    _echo_json(_with_keys(config_path, list_all))


@keys.command("rotate")
@_CONFIG_OPTION
@click.argument("key_id")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Seconds the old secret stays valid.",
)
def keys_rotate(config_path: Path | None, key_id: str, grace: float) -> None:
    """Issue a new secret for KEY_ID (a revoked or expired key cannot be rotated)."""

    async def rotate(service: KeyService, config: Config) -> dict[str, Any]:
        secret, key = await service.rotate(key_id, grace_seconds=grace, actor=_cli_actor())
        return {"key": secret, **key.public()}

    _echo_json(_with_keys(config_path, rotate))


@keys.command("revoke")
@_CONFIG_OPTION
@click.argument("key_id")
def keys_revoke(config_path: Path | None, key_id: str) -> None:
    """Revoke KEY_ID in the state store at once.

    A gateway that is already running may still accept the key for up to 5 seconds: each server
    process caches authenticated keys that long (revoking through the admin API, DELETE
    /admin/keys/KEY_ID, takes effect at once in the process that serves the call; other
    processes and replicas follow within the same 5 seconds).
    """

    async def revoke(service: KeyService, config: Config) -> dict[str, Any]:
        return (await service.revoke(key_id, actor=_cli_actor())).public()

    _echo_json(_with_keys(config_path, revoke))


@main.command()
@_CONFIG_OPTION
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
        config = with_server_defaults(_config(config_path))
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
        click.echo(f"error: {err.message}", err=True)
        sys.exit(1)
    except OSError as err:
        click.echo(f"error: cannot read the ledger: {err.strerror or err}", err=True)
        sys.exit(1)
    if form == "json":
        _echo_json(payload)
    elif form == "csv":
        click.echo(to_csv(payload), nl=False)
    else:
        click.echo(to_table(payload))


@main.group()
def db() -> None:
    """The gateway's state database (`state.url`)."""


@db.command("migrate")
@_CONFIG_OPTION
def db_migrate(config_path: Path | None) -> None:
    """Apply pending PostgreSQL migrations now (`serve` applies them at start-up too).

    Running it again applies nothing. SQLite state needs no migration: its stores create their
    tables when they open.
    """
    from llmrelay.stores.postgres import is_postgres, migrate

    try:
        config = with_server_defaults(_config(config_path))
        url = config.state.url
        if not is_postgres(url):
            click.echo(
                f"nothing to migrate: {(url or 'memory://').partition(':')[0]} state needs no migrations"
            )
            return
        assert url is not None
        applied = asyncio.run(migrate(url))
    except RelayError as err:
        click.echo(f"error: {err.message}", err=True)
        sys.exit(1)
    except OSError as err:
        click.echo(f"error: cannot reach the PostgreSQL state database: {err.strerror or err}", err=True)
        sys.exit(1)
    _echo_json({"applied": applied})


@main.group()
def alerts() -> None:
    """Alert rules (`alerts:` in the config)."""


@alerts.command("rules")
@_CONFIG_OPTION
def alerts_rules(config_path: Path | None) -> None:
    """Print the config's alert rules as a Prometheus rules file (YAML), for Alertmanager users."""
    import yaml

    from llmrelay.alerts.prometheus_rules import rules_file

    config = _config(config_path)
    if config.alerts is None:
        click.echo("error: the config has no `alerts:` section", err=True)
        sys.exit(1)
    click.echo(yaml.safe_dump(rules_file(config.alerts), sort_keys=False, width=200), nl=False)


@main.group()
def cache() -> None:
    """The response cache of a running gateway, through its admin API (needs the master key).

    The cache lives in the server (its semantic index in each server process), so these commands
    talk to the server rather than to the store.
    """


_URL_OPTION = click.option(
    "--url",
    envvar="LLMRELAY_URL",
    default="http://127.0.0.1:4000",
    show_default=True,
    help="The gateway (env LLMRELAY_URL).",
)
_MASTER_KEY_OPTION = click.option(
    "--master-key",
    envvar="LLMRELAY_MASTER_KEY",
    required=True,
    help="The gateway's master key (env LLMRELAY_MASTER_KEY).",
)


@cache.command("stats")
@_URL_OPTION
@_MASTER_KEY_OPTION
def cache_stats(url: str, master_key: str) -> None:
    """Each caching alias's hits, misses and savings (in the server process that answers)."""
    _echo_json(_admin_call(url, master_key, "GET", "/admin/cache"))


@cache.command("clear")
@_URL_OPTION
@_MASTER_KEY_OPTION
@click.option("--model", "-m", default=None, help="Clear this alias only (default: every alias).")
def cache_clear(url: str, master_key: str, model: str | None) -> None:
    """Make cached answers unreachable at once (other workers and replicas follow within 1 s)."""
    _echo_json(
        _admin_call(url, master_key, "POST", "/admin/cache/clear", {"model": model} if model else None)
    )


@cache.command("warm")
@_URL_OPTION
@_MASTER_KEY_OPTION
@click.argument("file", type=click.File("rb"))
@click.option(
    "--batch", type=click.IntRange(1, 100), default=16, show_default=True, help="Lines per request."
)
def cache_warm(url: str, master_key: str, file: Any, batch: int) -> None:
    """Fill the cache from FILE (JSON lines, `-` for stdin).

    Each line: {"model": alias, "question": "..." or "messages": [...], "answer": "..."}; without
    an answer the model is called and its reply kept. `key_id` / `team` name the owner for aliases
    whose cache scope is `key` / `team`. Progress on stderr; exits 1 when any line failed.
    """
    from llmrelay.cache.warm import WarmItem

    items: list[dict[str, Any]] = []
    for number, line in enumerate(file, 1):
        if not line.strip():
            continue
        try:
            msgspec.json.decode(line, type=WarmItem)
        except msgspec.DecodeError as err:
            raise click.UsageError(f"line {number}: {err}") from None
        items.append({"line": number, "item": msgspec.json.decode(line)})
    counts = {"stored": 0, "called": 0, "failed": 0}
    with click.progressbar(length=len(items), label="warming", file=sys.stderr) as bar:
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            answer = _admin_call(
                url, master_key, "POST", "/admin/cache/warm", {"items": [i["item"] for i in chunk]}
            )
            for sent, result in zip(chunk, answer["results"], strict=True):
                if "error" in result:
                    counts["failed"] += 1
                    click.echo(f"\nline {sent['line']}: {result['error']['message']}", err=True)
                else:
                    counts[result["outcome"]] += 1
            bar.update(len(chunk))
    click.echo(", ".join(f"{name} {n}" for name, n in counts.items()), err=True)
    if counts["failed"]:
        sys.exit(1)


def _admin_call(url: str, master_key: str, method: str, path: str, body: Any = None) -> Any:
    """One admin API call (stdlib HTTP: the CLI needs no client library); exits 1 on failure."""
    import urllib.error
    import urllib.request

    data = msgspec.json.encode(body) if body is not None else None
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"authorization": f"Bearer {master_key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return msgspec.json.decode(response.read())
    except urllib.error.HTTPError as err:
        try:
            message = msgspec.json.decode(err.read())["error"]["message"]
        except (msgspec.DecodeError, KeyError, TypeError):
            message = err.reason
        click.echo(f"error: {err.code} from {path}: {message}", err=True)
    except urllib.error.URLError as err:
        click.echo(f"error: cannot reach the gateway at {url}: {err.reason}", err=True)
    sys.exit(1)
