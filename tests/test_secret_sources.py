"""Provider keys from files and commands: re-read on change, refreshed in the background, and
failures that say what went wrong without quoting a key or a command's output."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest

from llmrelay.clock import FakeClock
from llmrelay.config import CommandSecret, FileSecret, KeySource, Secret, load_config
from llmrelay.errors import ConfigError
from llmrelay.secret_sources import CommandReader, FileReader, reader_for

LEAK = "sk-leaked-through-stderr-0123456789"

# A command that prints the file it is given, or fails printing a "secret" to stderr when the
# file says "fail" (as a secrets CLI that echoes its token in an error might).
SCRIPT = (
    "import sys, pathlib; t = pathlib.Path(sys.argv[1]).read_text()\n"
    f"if t == 'fail': print('denied, token={LEAK}', file=sys.stderr); sys.exit(3)\n"
    "print(t)"
)


def write(path: Path, text: str) -> None:
    """Replace atomically (as Kubernetes and careful rotation scripts do)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def model(api_key: object) -> dict[str, object]:
    return {"models": [{"name": "m", "targets": [{"provider": "openai", "model": "x", "api_key": api_key}]}]}


def test_config_reads_the_three_kinds_and_names_a_bad_one() -> None:
    assert load_config(model("k")).models[0].targets[0].api_key == KeySource(Secret("k"))
    from_file = load_config(model({"file": "/run/secrets/openai", "refresh": "2"}))
    assert from_file.models[0].targets[0].api_key == KeySource(
        FileSecret(file="/run/secrets/openai", refresh=2)
    )
    command = load_config(model({"exec": ["vault", "kv", "get", "-field=key", "secret/openai"]}))
    spec = command.models[0].targets[0].api_key
    assert spec is not None and isinstance(spec.spec, CommandSecret) and spec.spec.timeout == 5
    assert repr(spec) == "KeySource(exec='vault')"  # arguments may hold tokens: never shown
    with pytest.raises(
        ConfigError, match=r"unknown field `refesh` - at `\$\.models\[0\]\.targets\[0\]\.api_key`"
    ):
        load_config(model({"file": "/x", "refesh": 1}))
    with pytest.raises(
        ConfigError, match=r"expected a key, `\{key.*`\{file.*at `\$\.models\[0\]\.targets\[0\]\.api_key`"
    ):
        load_config(model({"path": "/x"}))
    with pytest.raises(
        ConfigError, match=r"length >= 1 \(`exec`\) - at `\$\.models\[0\]\.targets\[0\]\.api_key`"
    ):
        load_config(model({"exec": []}))


async def test_file_is_reread_when_it_changes_at_most_once_per_refresh(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write(path, "key-one\n")
    clock = FakeClock()
    reader = FileReader(FileSecret(file=str(path), refresh=5), clock)
    await reader.open()
    assert reader.current() == "key-one"  # stripped
    write(path, "key-two")
    assert reader.current() == "key-one"  # not looked at before `refresh` has passed
    clock.advance(5)
    assert reader.current() == "key-two"


async def test_file_missing_or_empty_keeps_the_last_key_and_logs_no_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "key"
    write(path, "key-one")
    clock = FakeClock()
    reader = FileReader(FileSecret(file=str(path), refresh=1), clock)
    await reader.open()
    path.unlink()
    clock.advance(1)
    with caplog.at_level(logging.WARNING, "llmrelay.secrets"):
        assert reader.current() == "key-one"
        write(path, "")
        clock.advance(1)
        assert reader.current() == "key-one"
    assert "No such file" in caplog.text and "empty key" in caplog.text
    assert "key-one" not in caplog.text


async def test_file_missing_at_start_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the key file .*/nope: No such file"):
        await reader_for(KeySource(FileSecret(file=str(tmp_path / "nope"))), FakeClock()).open()
    (tmp_path / "bad").write_text("two\nlines")
    with pytest.raises(ConfigError, match="not printable ASCII"):
        await FileReader(FileSecret(file=str(tmp_path / "bad")), FakeClock()).open()


async def test_command_refreshes_in_the_background_and_keeps_the_key_when_it_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "value"
    source.write_text("key-one")
    clock = FakeClock()
    reader = CommandReader(
        CommandSecret(exec=[sys.executable, "-c", SCRIPT, str(source)], refresh=300, timeout=10), clock
    )
    await reader.open()
    try:
        assert reader.current() == "key-one"
        source.write_text("key-two")
        clock.advance(299)
        assert reader.current() == "key-one"  # not due
        clock.advance(1)
        assert reader.current() == "key-one"  # due: refreshing in the background, old key serves
        await until(lambda: reader.current() == "key-two")
        source.write_text("fail")
        clock.advance(300)
        with caplog.at_level(logging.WARNING, "llmrelay.secrets"):
            reader.current()
            await until(lambda: "exited with status 3" in caplog.text)
        assert reader.current() == "key-two"
        assert LEAK not in caplog.text and "bytes on stderr, not shown" in caplog.text
    finally:
        await reader.aclose()


async def test_command_failures_at_start_are_clear_and_quote_nothing(tmp_path: Path) -> None:
    source = tmp_path / "value"
    source.write_text("fail")
    failing = CommandReader(CommandSecret(exec=[sys.executable, "-c", SCRIPT, str(source)]), FakeClock())
    with pytest.raises(ConfigError) as info:
        await failing.open()
    name = os.path.basename(sys.executable)
    stderr = len(f"denied, token={LEAK}\n")
    assert info.value.message == (
        f"the key command `{name}` exited with status 3 ({stderr} bytes on stderr, not shown)"
    )
    assert LEAK not in repr(info.value) and info.value.__cause__ is None

    slow = CommandSecret(exec=[sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.3)
    with pytest.raises(ConfigError, match=rf"the key command `{name}` timed out after 0.3 s"):
        await CommandReader(slow, FakeClock()).open()

    with pytest.raises(ConfigError, match="`no-such-program-xyz` could not be started"):
        await CommandReader(CommandSecret(exec=["no-such-program-xyz"]), FakeClock()).open()

    silent = CommandSecret(exec=[sys.executable, "-c", "pass"])
    with pytest.raises(ConfigError, match="gave an empty key"):
        await CommandReader(silent, FakeClock()).open()


async def until(condition: object, deadline: float = 10.0) -> None:
    """Poll ``condition`` (a callable) until true; fail after ``deadline`` seconds."""
    assert callable(condition)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)
