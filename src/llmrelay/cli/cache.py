"""``llmrelay cache``: the response cache of a running gateway, through its admin API."""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec

from llmrelay.cli.options import echo_json, fail


@click.group()
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
    echo_json(_admin_call(url, master_key, "GET", "/admin/cache"))


@cache.command("clear")
@_URL_OPTION
@_MASTER_KEY_OPTION
@click.option("--model", "-m", default=None, help="Clear this alias only (default: every alias).")
def cache_clear(url: str, master_key: str, model: str | None) -> None:
    """Make cached answers unreachable at once (other workers and replicas follow within 1 s)."""
    echo_json(_admin_call(url, master_key, "POST", "/admin/cache/clear", {"model": model} if model else None))


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
        fail(f"{err.code} from {path}: {message}")
    except urllib.error.URLError as err:
        fail(f"cannot reach the gateway at {url}: {err.reason}")
