from pathlib import Path

import pytest

from llmrelay.config import KeySource, Secret, load_config
from llmrelay.config_environment import environment_config
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
    assert from_file.models[0].targets[0].api_key == KeySource(Secret("sk-secret"))
    assert from_file.models[0].timeout.total == 30


def test_secrets_never_show() -> None:
    config = load_config(
        {"models": [{"name": "a", "targets": [{"provider": "openai", "model": "m", "api_key": "sk-XYZ"}]}]}
    )
    key = config.models[0].targets[0].api_key
    assert key is not None and isinstance(key.spec, Secret) and key.spec.reveal() == "sk-XYZ"
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
        ({**BASE, "keys": [{"key": "sk-k-0123456789", "scopes": ["root"]}]}, "$.keys[0].scopes"),
        ({**BASE, "keys": [{"key": "sk-k-0123456789", "routes": ["/admin"]}]}, "$.keys[0].routes"),
        ({**BASE, "keys": [{"key": "sk-k-0123456789", "ips": ["10.0.0.1/8"]}]}, "$.keys[0].ips"),
        ({**BASE, "keys": [{"key": "sk-k-0123456789", "max_tokens": 0}]}, "$.keys[0].max_tokens"),
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
    assert target.provider == "anthropic" and target.api_key == KeySource(Secret("a-key"))


def test_env_references_fill_numbers_and_booleans_but_strings_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "llmrelay.yaml"
    path.write_text(
        "server: {port: ${PORT}, master_key: ${MASTER}}\n"
        "models:\n"
        "  - name: fast\n"
        "    targets: [{provider: openai, model: ${MODEL}, api_key: ${KEY}, weight: ${W:-2.5}}]\n"
        "    timeout: {total: ${LAT:-0.1}}\n"
        "    retry: {max_retries: ${RETRIES}, enforce: ${ENFORCE}}\n"
    )
    env = {"PORT": "4100", "MASTER": "0123", "MODEL": "on", "KEY": "1e3", "RETRIES": "3", "ENFORCE": "false"}
    config = load_config(path, environ=env)
    model = config.models[0]
    assert config.server.port == 4100
    assert model.timeout.total == 0.1 and model.targets[0].weight == 2.5
    assert model.retry.max_retries == 3 and model.retry.enforce is False
    # strings are never reinterpreted: a secret `0123` and a model named `on` stay as written
    assert config.server.master_key == Secret("0123")
    assert model.targets[0].model == "on" and model.targets[0].api_key == KeySource(Secret("1e3"))


def test_env_reference_that_is_not_a_number_names_the_path() -> None:
    raw = {"server": {"port": "${PORT}"}, **BASE}
    with pytest.raises(ConfigError, match=r"Expected `int`.* - at `\$\.server\.port`"):
        load_config(raw, environ={"PORT": "http"})


def test_env_references_fill_typed_provider_options() -> None:
    import asyncio

    from llmrelay.relay import Relay

    options = {"latency": "${LAT:-0.01}", "text": "${TEXT}"}
    raw = {"models": [{"name": "a", "targets": [{"provider": "mock", "options": options}]}]}

    async def ask() -> str:
        async with Relay(load_config(raw, environ={"TEXT": "0123"})) as relay:
            return (await relay.chat("a", [{"role": "user", "content": "x"}])).text

    assert asyncio.run(ask()) == "0123"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://127.0.0.1:6379/0", "redis:// is not supported"),
        ("postgresql://", "needs a host"),
        ("postgresql://db/x?schema=Bad-Name", "invalid schema"),
        ("mysql://db/x", "unsupported scheme 'mysql'"),
        ("sqlite://", "needs a file"),
        ("rediss://:secret@cache:6380/0", "rediss://"),
        ("llmrelay.db", "unsupported scheme"),
    ],
)
def test_state_urls_that_cannot_work_are_rejected_at_load(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"state": {"url": url}, **BASE})
    message = info.value.message
    assert "`$.state.url`" in message and fragment in message
    assert "memory://" in message and "\n" not in message and "secret" not in message


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "sqlite:///./relay.db",
        "sqlite:////tmp/relay.db",
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgres://u:pw@db/x?schema=llmrelay",
    ],
)
def test_supported_state_urls_load(url: str) -> None:
    assert load_config({"state": {"url": url}, **BASE}).state.url == url


def test_log_prompts_is_not_an_option() -> None:
    with pytest.raises(ConfigError, match="log_prompts"):
        load_config({"server": {"log_prompts": True}, **BASE})


def model(**fields: object) -> dict[str, object]:
    return {"models": [{"name": "a", "targets": [{"provider": "mock"}], **fields}]}


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (model(timeout={"total": -5}), "$.models[0].timeout.total"),
        (model(timeout={"connect": 0}), "$.models[0].timeout.connect"),
        (model(timeout={"idle": -1}), "$.models[0].timeout.idle"),
        (model(timeout={"first_token": 0}), "$.models[0].timeout.first_token"),
        (model(retry={"max_retries": -1}), "$.models[0].retry.max_retries"),
        (model(retry={"base": 0}), "$.models[0].retry.base"),
        (model(retry={"cap": -1}), "$.models[0].retry.cap"),
        (model(retry={"budget_ratio": -0.1}), "$.models[0].retry.budget_ratio"),
        (model(circuit_breaker={"failures": 0}), "$.models[0].circuit_breaker.failures"),
        (model(circuit_breaker={"failure_ratio": 1.5}), "$.models[0].circuit_breaker.failure_ratio"),
        (model(circuit_breaker={"min_calls": 0}), "$.models[0].circuit_breaker.min_calls"),
        (model(circuit_breaker={"window": 0}), "$.models[0].circuit_breaker.window"),
        (model(circuit_breaker={"cooldown": -1}), "$.models[0].circuit_breaker.cooldown"),
        (model(circuit_breaker={"half_open_probes": 0}), "$.models[0].circuit_breaker.half_open_probes"),
        (
            {"models": [{"name": "a", "targets": [{"provider": "mock", "weight": -1}]}]},
            "$.models[0].targets[0].weight",
        ),
        (
            {"models": [{"name": "a", "targets": [{"provider": "mock", "price": -1}]}]},
            "$.models[0].targets[0].price",
        ),
        (
            {
                "models": [
                    {"name": "a", "targets": [{"provider": "mock", "price": {"input": -1, "output": 1}}]}
                ]
            },
            "$.models[0].targets[0].price.input",
        ),
        (
            {"models": [{"name": "a", "targets": [{"provider": "mock", "price": {"input": 1}}]}]},
            "$.models[0].targets[0].price",
        ),
        (
            {
                "models": [
                    {
                        "name": "a",
                        "targets": [{"provider": "mock", "price": {"input": 1, "output": 1, "cache": 1}}],
                    }
                ]
            },
            "$.models[0].targets[0].price",  # unknown field `cache`
        ),
        (
            {
                "models": [
                    {
                        "name": "a",
                        "targets": [
                            {"provider": "mock", "price": {"input": 1, "output": 1, "cache_write": "x"}}
                        ],
                    }
                ]
            },
            "$.models[0].targets[0].price.cache_write",
        ),
        ({"server": {"heartbeat": 0}, **BASE}, "$.server.heartbeat"),
        ({"server": {"max_body_bytes": 0}, **BASE}, "$.server.max_body_bytes"),
        ({"server": {"workers": 0}, **BASE}, "$.server.workers"),
        ({"server": {"graceful_shutdown": -1}, **BASE}, "$.server.graceful_shutdown"),
        ({"server": {"idempotency_ttl": 0}, **BASE}, "$.server.idempotency_ttl"),
        ({"server": {"idempotency_wait": -1}, **BASE}, "$.server.idempotency_wait"),
        ({"server": {"log_level": "loud"}, **BASE}, "$.server.log_level"),
        (
            {"models": [{"name": "a", "targets": [{"provider": "openai", "api_key": "k"}]}]},
            "$.models[0].targets[0].model",
        ),
        (
            {"models": [{"name": "a", "targets": [{"provider": "anthropic", "api_key": "k"}]}]},
            "$.models[0].targets[0].model",
        ),
        ({}, "$.models"),
        ({"server": {"master_key": ""}, **BASE}, "$.server.master_key"),
        ({"server": {"master_key": "  "}, **BASE}, "$.server.master_key"),
        ({"keys": [{"key": ""}], **BASE}, "$.keys[0].key"),
    ],
)
def test_values_that_cannot_work_are_rejected_with_their_path(raw: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert f"`{path}" in info.value.message and "\n" not in info.value.message


def test_zero_is_allowed_where_it_means_off() -> None:
    config = load_config(
        {
            "server": {"graceful_shutdown": 0, "idempotency_wait": 0},
            **model(retry={"max_retries": 0, "max_retry_after": 0, "budget_ratio": 0}),
        }
    )
    assert config.models[0].retry.max_retries == 0 and config.server.graceful_shutdown == 0


def test_empty_config_file_is_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"no models .*`\$\.models`"):
        load_config(empty)


def test_invalid_yaml_names_the_file_on_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - {name: a, targets: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    message = info.value.message
    assert "<unicode string>" not in message and "\n" not in message
    assert f"{bad}:3: not valid YAML" in message and "started at line 2" in message


def _one(name: str, target: dict[str, object], **extra: object) -> dict[str, object]:
    return {"models": [{"name": name, "targets": [target], **extra}, {"name": "gpt", "targets": [MOCK]}]}


MOCK = {"provider": "mock"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (_one("a*b*", MOCK), "one `*`, 'a*b*' at `$.models[0].name`"),
        (_one("gpt-x", {"provider": "openai", "model": "*"}), "wildcard alias's target"),
        (_one("x/*", {"provider": "anthropic", "model": "*"}), "openai, azure target"),
        (_one("x/*", {"provider": "openai", "model": "*-*"}), "one `*` at `$.models[0].targets[0].model`"),
        (_one("x/*", {"provider": "anthropic"}), "needs a model at `$.models[0].targets[0].model`"),
        (
            {
                "models": [
                    {"name": "a", "targets": [MOCK], "fallbacks": ["b/*"]},
                    {"name": "b/*", "targets": [MOCK]},
                ]
            },
            "not the pattern 'b/*'",
        ),
        (
            _one("az", {"provider": "azure", "model": "dep"}),
            "needs a base_url at `$.models[0].targets[0].base_url`",
        ),
        (_one("az", {"provider": "azure", "base_url": "https://r.openai.azure.com"}), "needs a model"),
    ],
)
def test_wildcard_and_azure_rules_name_the_path(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    assert fragment in str(info.value)


def test_a_pattern_resolves_like_the_router_for_config_lookups() -> None:
    config = load_config(
        {
            "models": [
                {"name": "openai/*", "targets": [{"provider": "openai"}], "timeout": {"total": 5}},
                {"name": "openai/gpt-*", "targets": [{"provider": "openai", "model": "openai/*"}]},
                {"name": "openai/named", "targets": [MOCK], "timeout": {"total": 7}},
            ]
        }
    )
    assert (found := config.model("openai/x")) is not None and found.timeout.total == 5
    assert (found := config.model("openai/gpt-4o")) is not None and found.name == "openai/gpt-*"
    assert (found := config.model("openai/named")) is not None and found.timeout.total == 7
    assert config.model("claude") is None and config.model("openai/") is None


def test_secrets_compare_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from llmrelay import config_secrets

    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(config_secrets.hmac, "compare_digest", spy)
    assert config_secrets.Secret("sk-é-1") == config_secrets.Secret("sk-é-1")
    assert config_secrets.Secret("sk-a") != config_secrets.Secret("sk-ab")
    assert len(calls) == 2
