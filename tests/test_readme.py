"""The README's samples and the shipped example configs run as written, so they cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from llmrelay.cli import main
from llmrelay.config import load_config
from llmrelay.relay import Relay

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
REAL_ENV = {
    "OPENAI_API_KEY": "sk-test",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "GEMINI_API_KEY": "gm-test",
    "LLMRELAY_MASTER_KEY": "sk-master-test",
    "APP_KEY": "sk-app-test",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in REAL_ENV}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_readme_opens_with_the_gateway_then_the_test_suite() -> None:
    first, second = blocks("bash")[:2]
    assert first.strip() == (
        "python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e '.[server]'"
        " && .venv/bin/llmrelay serve"
    )
    assert second.strip() == "scripts/test"


def test_the_python_sample_runs_on_the_example_config() -> None:
    sample = next(b for b in blocks("python") if "examples/llmrelay.yaml" in b)
    done = run_python(sample)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("You said: Hi (") and lines[0].endswith("answered by mock/default)")
    assert lines[1] == "You said: Hi again"
    assert lines[2] == "2 vectors of 8"


def test_the_sync_sample_runs() -> None:
    sample = next(b for b in blocks("python") if "SyncRelay" in b)
    done = run_python(sample)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "You said: Hi\n"


def test_the_real_provider_sample_compiles_and_its_config_builds() -> None:
    sample = next(b for b in blocks("python") if "examples/providers.yaml" in b)
    compile(sample, "README.md", "exec")
    relay = Relay(load_config(ROOT / "examples/providers.yaml", environ=REAL_ENV))
    assert relay.models == ["fast", "smart", "local", "embed"]


def test_every_example_file_the_readme_names_exists() -> None:
    named = set(re.findall(r"examples/[\w.-]+", README))
    assert named == {"examples/llmrelay.yaml", "examples/providers.yaml", "examples/alerts.yaml"}
    assert all((ROOT / name).is_file() for name in named)


def test_the_alerts_example_loads_without_any_key() -> None:
    from typing import get_args

    from llmrelay.alerts.rules import Kind

    config = load_config(ROOT / "examples/alerts.yaml", environ={})
    assert config.alerts is not None
    assert {rule.kind for rule in config.alerts.rules} == set(get_args(Kind))  # every kind shown


def test_the_example_config_loads_without_any_key() -> None:
    config = load_config(ROOT / "examples/llmrelay.yaml", environ={})
    assert [m.name for m in config.models] == ["fast", "smart", "embed"]
    assert {t.provider for m in config.models for t in m.targets} == {"mock"}


def test_the_commented_real_targets_of_the_example_are_valid(tmp_path: Path) -> None:
    text = (ROOT / "examples/llmrelay.yaml").read_text(encoding="utf-8")
    live = re.sub(r"^(\s*)# (- \{provider: (?!mock))", r"\1\2", text, flags=re.MULTILINE)
    assert live.count("- {provider:") == text.count("- {provider:")
    uncommented = tmp_path / "live.yaml"
    uncommented.write_text(live)
    config = load_config(uncommented, environ=REAL_ENV)
    providers = {t.provider for m in config.models for t in m.targets}
    assert providers == {"mock", "openai", "anthropic", "gemini"}
    assert any(t.base_url == "http://127.0.0.1:11434/v1" for m in config.models for t in m.targets)
    Relay(config)  # every provider accepts its target (no network until a call)


def test_the_readme_config_block_loads(tmp_path: Path) -> None:
    (block,) = [b for b in blocks("yaml") if b.startswith("server:")]
    path = tmp_path / "readme.yaml"
    path.write_text(block)
    config = load_config(path, environ=REAL_ENV)
    assert [m.name for m in config.models] == ["fast", "smart", "demo"]
    Relay(config)


def test_chat_on_the_example_config() -> None:
    result = CliRunner().invoke(
        main, ["chat", "-c", str(ROOT / "examples/llmrelay.yaml"), "-m", "smart", "Hi"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "A considered answer from the smart alias.\n"


def test_the_license_file_matches_pyproject() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 200
