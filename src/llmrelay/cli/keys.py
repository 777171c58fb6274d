"""``llmrelay keys``: virtual keys in the gateway's state store (the one ``serve`` uses)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llmrelay.cli.options import CONFIG_OPTION, config_for, echo_json, fail
from llmrelay.config import Config
from llmrelay.config_environment import with_server_defaults
from llmrelay.errors import RelayError

if TYPE_CHECKING:
    from llmrelay.keys import KeyService


@click.group()
def keys() -> None:
    """Manage virtual keys in the gateway's state store (the one `serve` uses)."""


def _with_keys(config_path: Path | None, action: Callable[[KeyService, Config], Awaitable[Any]]) -> Any:
    from llmrelay.clock import SystemClock
    from llmrelay.keys import KeyService

    async def run() -> Any:
        config = with_server_defaults(config_for(config_path))
        service = KeyService.for_config(config, clock=SystemClock())
        await service.open()
        try:
            return await action(service, config)
        finally:
            await service.aclose()

    try:
        return asyncio.run(run())
    except RelayError as err:
        fail(err.message)


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
@CONFIG_OPTION
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

    echo_json(_with_keys(config_path, create))


@keys.command("list")
@CONFIG_OPTION
def keys_list(config_path: Path | None) -> None:
    """List keys (never their secrets)."""

    async def list_all(service: KeyService, config: Config) -> list[dict[str, Any]]:
        return [k.public() for k in await service.list()]

    echo_json(_with_keys(config_path, list_all))


@keys.command("rotate")
@CONFIG_OPTION
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

    echo_json(_with_keys(config_path, rotate))


@keys.command("revoke")
@CONFIG_OPTION
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

    echo_json(_with_keys(config_path, revoke))
