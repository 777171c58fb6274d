from pathlib import Path

import pytest

from llmrelay.config import Secret, environment_config, load_config
from llmrelay.errors import ConfigError

BASE = {"models": [{"name": "fast", "targets": [{"provider": "mock"}]}]}


def test_yaml_and_dict_give_the_same_config(tmp_path: Path) -> None:
    path = tmp_path / "llmrelay.yaml"
    path.write_text(
        "server: {port: 4100}\n"
        "models:\n"
        "  - name: fast\n"
        "    targets:\n"
        "      - {provider: openai, model: gpt-4o-mini, api_key: ${KEY}, weight: 3}\n"
        "      - {provider: mock}\n"
        "    timeout: {total: 30}\n"
    )
    from_file = load_config(path, environ={"KEY": "sk-secret"})
    from_dict = load_config(
        {
            "server": {"port": 4100},
            "models": [
                {
                    "name": "fast",
                    "targets": [
                        {
                            "provider": "openai",
                            "model": "gpt-4o-mini",
                            "api_key": "sk-secret",
                            "weight": 3,
                        },
                        {"provider": "mock"},
                    ],
                    "timeout": {"total": 30},
                }
            ],
        }
    )
    assert from_file == from_dict
    assert from_file.models[0].targets[0].api_key == Secret("sk-secret")
    assert from_file.models[0].timeout.total == 30


def test_secrets_never_show() -> None:
    config = load_config(
        {"models": [{"name": "a", "targets": [{"provider": "openai", "api_key": "sk-XYZ"}]}]}
    )
    key = config.models[0].targets[0].api_key
    assert key is not None and key.reveal() == "sk-XYZ"
    for text in (repr(config), str(config), repr(key), f"{key}"):
        assert "sk-XYZ" not in text


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"modles": []}, "`modles`"),
        (
            {"models": [{"name": "a", "targets": [{"provider": "mock", "modle": "x"}]}]},
            "$.models[0].targets[0]",
        ),
        (
            {"models": [{"name": "a", "targets": [{"provider": "mock"}], "timeout": {"totl": 1}}]},
            "$.models[0].timeout",
        ),
        (
            {"models": [{"name": "a", "targets": [{"provider": "mock", "weight": "x"}]}]},
            "$.models[0].targets[0].weight",
        ),
        (
            {"models": [{"name": "a", "targets": [{"provider": "nope"}]}]},
            "$.models[0].targets[0].provider",
        ),
        ({"models": [{"name": "a", "targets": []}]}, "$.models[0].targets"),
        ({"models": [{"name": "a", "targets": [{"provider": "mock", "weight": 0}]}]}, "weight"),
        (
            {"models": [{"name": "a", "targets": [{"provider": "mock"}], "fallbacks": ["b"]}]},
            "fallbacks",
        ),
        ({"models": [BASE["models"][0], BASE["models"][0]]}, "duplicate model name"),
    ],
)
def test_invalid_config_names_the_path(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert fragment in info.value.message


def test_env_references() -> None:
    raw = {"models": [{"name": "a", "targets": [{"provider": "mock", "model": "${M:-dflt}"}]}]}
    assert load_config(raw, environ={}).models[0].targets[0].model == "dflt"
    assert load_config(raw, environ={"M": "set"}).models[0].targets[0].model == "set"
    missing = {"models": [{"name": "a", "targets": [{"provider": "openai", "api_key": "${NOPE}"}]}]}
    with pytest.raises(ConfigError, match=r"NOPE is not set .*\$\.models\[0\]\.targets\[0\]\.api_key"):
        load_config(missing, environ={})


def test_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_environment_config_offers_mock_and_keyed_providers() -> None:
    assert [m.name for m in environment_config({}).models] == ["mock", "mock-embed"]
    config = environment_config({"ANTHROPIC_API_KEY": "a-key", "OPENAI_API_KEY": ""})
    names = [m.name for m in config.models]
    assert "claude-haiku-4-5" in names and "gpt-4o-mini" not in names
    target = config.models[-1].targets[0]
    assert target.provider == "anthropic" and target.api_key == Secret("a-key")
