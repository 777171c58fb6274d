from pathlib import Path

from click.testing import CliRunner

from llmrelay.cli import main


def test_chat_streams_from_the_mock_provider_with_no_config() -> None:
    result = CliRunner().invoke(main, ["chat", "Hello relay"], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "You said: Hello relay"


def test_chat_with_a_config_file_and_no_stream(tmp_path: Path) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text("models:\n  - {name: demo, targets: [{provider: mock, options: {text: scripted}}]}\n")
    result = CliRunner().invoke(main, ["chat", "-c", str(config), "-m", "demo", "--no-stream", "x"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "scripted"


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["chat", "-m", "nope", "x"])
    assert result.exit_code == 1
    assert "error: The model `nope` does not exist" in result.output


def test_keys_lifecycle_in_the_data_dir(tmp_path: Path) -> None:
    import json

    env = {"LLMRELAY_HOME": str(tmp_path)}
    runner = CliRunner()
    created = runner.invoke(
        main, ["keys", "create", "--name", "bot", "--models", "a,b", "--metadata", "team=x"], env=env
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert (
        key["key"].startswith("sk-relay-")
        and key["models"] == ["a", "b"]
        and key["metadata"] == {"team": "x"}
    )
    listed = runner.invoke(main, ["keys", "list"], env=env)
    assert [k["id"] for k in json.loads(listed.output)] == [key["id"]]
    assert key["key"] not in listed.output
    rotated = json.loads(runner.invoke(main, ["keys", "rotate", key["id"], "--grace", "0"], env=env).output)
    assert rotated["key"] != key["key"]
    revoked = json.loads(runner.invoke(main, ["keys", "revoke", key["id"]], env=env).output)
    assert revoked["revoked_at"] is not None
    missing = runner.invoke(main, ["keys", "revoke", "key_nope"], env=env)
    assert missing.exit_code == 1 and "no key with id key_nope" in missing.output
    assert (tmp_path / "llmrelay.db").exists()
