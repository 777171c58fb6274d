"""The audit log: both backends keep one contract; a config change is recorded once, secrets masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from llmrelay.audit import (
    AuditLog,
    MemoryAuditLog,
    PostgresAuditLog,
    SqliteAuditLog,
    audit_log_for,
    config_digest,
    record_config,
)
from llmrelay.config import Config, load_config
from tests.pg import pg_schema


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditLog]:
    async with AsyncExitStack() as stack:
        made: AuditLog
        if request.param == "postgres":
            made = audit_log_for(await stack.enter_async_context(pg_schema("audit")))
            assert isinstance(made, PostgresAuditLog)
        elif request.param == "sqlite":
            made = SqliteAuditLog(tmp_path / "a.db")
        else:
            made = MemoryAuditLog()
        await made.open()
        stack.push_async_callback(made.aclose)
        yield made


async def test_entries_come_back_newest_first_by_page_and_action(log: AuditLog) -> None:
    for i in range(5):
        await log.record(at=float(i), actor="master", action="key.create" if i % 2 else "key.revoke",
                         target=f"key_{i}", details={"n": i})  # fmt: skip
    all_ = await log.query(limit=10)
    assert [e.target for e in all_] == ["key_4", "key_3", "key_2", "key_1", "key_0"]
    assert all_[0].details == {"n": 4} and all_[0].actor == "master" and all_[0].at == 4.0
    page = await log.query(limit=2, before=all_[1].id)
    assert [e.target for e in page] == ["key_2", "key_1"]
    assert [e.target for e in await log.query(limit=10, action="key.create")] == ["key_3", "key_1"]


def _config(master: str, alias: str = "m") -> Config:
    return load_config(
        {"server": {"master_key": master}, "models": [{"name": alias, "targets": [{"provider": "mock"}]}]}
    )


async def test_a_config_is_recorded_when_it_changes_only(log: AuditLog) -> None:
    assert await record_config(log, _config("sk-a-0123456789"), at=1.0) is not None
    assert await record_config(log, _config("sk-a-0123456789"), at=2.0) is None
    assert await record_config(log, _config("sk-b-0123456789"), at=3.0) is None  # only a secret changed
    changed = await record_config(log, _config("sk-a-0123456789", alias="n"), at=4.0)
    assert changed is not None and changed.details["previous"] == config_digest(_config("sk-z-0123456789"))


def test_provider_keys_from_every_source_are_masked_in_the_digest(tmp_path: Path) -> None:
    """Literal keys, key files and key commands all go into the digest without their values: a
    config with such keys must not fail the start (it did, with key files and commands)."""
    key_file = tmp_path / "openai.key"
    key_file.write_text("sk-from-a-file-0123456789")
    targets = [
        {"provider": "openai", "model": "m", "api_key": "sk-literal-0123456789"},
        {"provider": "openai", "model": "m", "api_key": {"file": str(key_file)}, "name": "filed"},
        {"provider": "openai", "model": "m", "api_key": {"exec": ["echo", "sk-exec"]}, "name": "run"},
    ]
    config = load_config({"models": [{"name": "m", "targets": targets}]})
    digest = config_digest(config)
    other = [{**targets[0], "api_key": "sk-other-literal-987654"}, *targets[1:]]
    assert config_digest(load_config({"models": [{"name": "m", "targets": other}]})) == digest
