"""``llmrelay keys``: what the command accepts, refuses and warns about (the store is a temp dir)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from llmrelay.cli import main


@pytest.fixture
def keys(tmp_path: Path) -> Any:
    env = {"LLMRELAY_HOME": str(tmp_path)}

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["keys", *args], env=env)

    return run


def created(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.stdout)
    return record


def test_model_names_are_trimmed_and_known_ones_pass_quietly(keys: Any) -> None:
    result = keys("create", "--models", "mock, mock-embed ,")
    assert created(result)["models"] == ["mock", "mock-embed"]
    assert result.stderr == ""


def test_a_model_name_matching_no_alias_is_a_warning_naming_it(keys: Any, tmp_path: Path) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text("models:\n  - {name: demo, targets: [{provider: mock}]}\n")
    result = keys("create", "-c", str(config), "--models", "demo, mock ,nope")
    assert created(result)["models"] == ["demo", "mock", "nope"]  # kept: aliases may come later
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings)
    assert "`mock`" in warnings[0] and "`nope`" in warnings[1]
    assert "demo" not in result.stderr


@pytest.mark.parametrize("seconds", ["0", "-5", "nan", "inf"])
def test_expires_in_must_be_a_positive_number_of_seconds(keys: Any, seconds: str) -> None:
    result = keys("create", "--expires-in", seconds)
    assert result.exit_code == 2
    assert "--expires-in" in result.stderr and "> 0" in result.stderr
    assert json.loads(keys("list").stdout) == []


def test_expires_in_sets_the_expiry(keys: Any) -> None:
    key = created(keys("create", "--expires-in", "60"))
    assert 59 < key["expires_at"] - key["created_at"] <= 61


@pytest.mark.parametrize("item", ["foo", "=x", " =x"])
def test_metadata_must_be_key_value(keys: Any, item: str) -> None:
    result = keys("create", "--metadata", item)
    assert result.exit_code == 2
    assert "key=value" in result.stderr and repr(item) in result.stderr
    assert json.loads(keys("list").stdout) == []


def test_metadata_values_may_hold_equals_signs_and_be_empty(keys: Any) -> None:
    key = created(keys("create", "--metadata", "team=a=b", "--metadata", "note="))
    assert key["metadata"] == {"team": "a=b", "note": ""}


def test_m_is_not_short_for_metadata(keys: Any) -> None:
    # -m is --model in `llmrelay chat`: one letter must not mean two things.
    result = keys("create", "-m", "team=x")
    assert result.exit_code == 2 and "No such option '-m'" in result.stderr


def test_rotating_a_revoked_key_is_a_one_line_error(keys: Any) -> None:
    key = created(keys("create"))
    assert keys("revoke", key["id"]).exit_code == 0
    result = keys("rotate", key["id"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"error: key {key['id']} is revoked and cannot be rotated\n"


def test_grace_may_not_be_negative(keys: Any) -> None:
    key = created(keys("create"))
    result = keys("rotate", key["id"], "--grace", "-1")
    assert result.exit_code == 2 and "--grace" in result.stderr


def test_revoke_help_says_how_long_a_running_server_may_still_accept_the_key(keys: Any) -> None:
    result = keys("revoke", "--help")
    assert result.exit_code == 0
    assert "up to 5 seconds" in " ".join(result.output.split())


def test_names_a_pattern_serves_and_the_patterns_themselves_pass_quietly(keys: Any, tmp_path: Path) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text("models:\n  - {name: 'openai/*', targets: [{provider: mock}]}\n")
    result = keys("create", "-c", str(config), "--models", "openai/*,openai/gpt-4o,other/*")
    assert created(result)["models"] == ["openai/*", "openai/gpt-4o", "other/*"]
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and "`other/*`" in warnings[0]
