"""Versioned PostgreSQL migrations against the real server: applied once, a second run is a no-op,
concurrent runs (replicas starting together) apply each version exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import asyncpg
import pytest

from llmrelay.errors import ConfigError
from llmrelay.stores.pg_migrations import MIGRATIONS
from llmrelay.stores.postgres import migrate, split_url
from tests.pg import SERVER, pg_schema

ALL = [version for version, _, _ in MIGRATIONS]


async def recorded(url: str) -> list[int]:
    schema = split_url(url)[1]
    conn = await asyncpg.connect(SERVER)
    try:
        rows = await conn.fetch(f'SELECT version FROM "{schema}".llmrelay_migrations ORDER BY version')
        return [row[0] for row in rows]
    finally:
        await conn.close()


async def test_a_second_run_applies_nothing() -> None:
    async with pg_schema("mig") as url:
        assert await migrate(url) == ALL
        assert await migrate(url) == []
        assert await recorded(url) == ALL


async def test_concurrent_runs_apply_each_version_once() -> None:
    async with pg_schema("mig") as url:
        runs = await asyncio.gather(*(migrate(url) for _ in range(6)))
        assert sorted(v for run in runs for v in run) == ALL  # one run did it all, the others nothing
        assert await recorded(url) == ALL


def test_a_bad_schema_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid schema"):
        split_url("postgresql://h/db?schema=x;drop")


def test_the_schema_parameter_is_not_sent_to_the_server() -> None:
    assert split_url("postgresql://u@h:5/db?schema=abc&sslmode=disable") == (
        "postgresql://u@h:5/db?sslmode=disable",
        "abc",
    )


async def llmrelay(*args: str | Path) -> str:
    process = await asyncio.create_subprocess_exec(
        Path(sys.executable).with_name("llmrelay"), *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode()


async def test_db_migrate_command(tmp_path: Path) -> None:
    async with pg_schema("mig") as url:
        config = tmp_path / "c.json"
        mock = [{"name": "m", "targets": [{"provider": "mock"}]}]
        config.write_text(json.dumps({"state": {"url": url}, "models": mock}))
        assert json.loads(await llmrelay("db", "migrate", "-c", config)) == {"applied": ALL}
        assert json.loads(await llmrelay("db", "migrate", "-c", config)) == {"applied": []}
