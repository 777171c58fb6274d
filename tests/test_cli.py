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


def test_a_mid_stream_error_starts_on_its_own_line(tmp_path: Path) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text(
        "models:\n"
        "  - {name: demo, targets: [{provider: mock, options: {text: a b c, fail_after_chunks: 2}}]}\n"
    )
    result = CliRunner().invoke(main, ["chat", "-c", str(config), "-m", "demo", "x"])
    assert result.exit_code == 1
    assert result.stdout == "a b\n"
    assert result.stderr.startswith("error: ") and "mock stream dropped" in result.stderr
    assert "a b\nerror: " in result.output


def test_chat_dash_reads_the_prompt_from_stdin() -> None:
    result = CliRunner().invoke(main, ["chat", "-"], input="Hello from\nstdin\n", env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    assert result.stdout == "You said: Hello from\nstdin\n"


def test_chat_dash_with_empty_stdin_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["chat", "-"], input="")
    assert result.exit_code == 2
    assert "stdin" in result.stderr


def test_serve_refuses_a_state_url_it_cannot_use_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text(
        "state: {url: 'redis://127.0.0.1:6379/0'}\nmodels:\n  - {name: demo, targets: [{provider: mock}]}\n"
    )
    result = CliRunner().invoke(main, ["serve", "-c", str(config)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith("error: ") and "`$.state.url`" in result.output
    assert "listening" not in result.output


def test_keys_create_with_scopes_and_an_audit_trail(tmp_path: Path) -> None:
    import asyncio
    import json

    from llmrelay.audit import SqliteAuditLog

    env = {"LLMRELAY_HOME": str(tmp_path)}
    runner = CliRunner()
    args = ["keys", "create", "--scope", "admin:read", "--route", "/v1/messages", "--ip", "10.0.0.0/8"]
    created = runner.invoke(main, [*args, "--max-tokens", "64"], env=env)
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["scopes"] == ["admin:read"] and key["routes"] == ["/v1/messages"]
    assert key["ips"] == ["10.0.0.0/8"] and key["max_tokens"] == 64
    bad = runner.invoke(main, ["keys", "create", "--scope", "root"], env=env)
    assert bad.exit_code == 1 and "unknown scope 'root'" in bad.output
    runner.invoke(main, ["keys", "revoke", key["id"]], env=env)

    async def entries() -> list[tuple[str, str]]:
        log = SqliteAuditLog(tmp_path / "llmrelay.db")
        await log.open()
        try:
            return [(e.action, e.actor) for e in await log.query(limit=10)]
        finally:
            await log.aclose()

    found = asyncio.run(entries())
    assert [a for a, _ in found] == ["key.revoke", "key.create"]
    assert all(actor.startswith("cli:") for _, actor in found)
