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
