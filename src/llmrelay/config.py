"""Typed configuration, validated once at start-up; the only module that reads the environment.

The same structure loads from YAML or a Python dict (see ARCHITECTURE §10). Unknown keys are errors
that name their path (``$.models[0].targets[1].modle``); ``${VAR}`` and ``${VAR:-default}``
references are resolved from the environment before validation; credentials become
:class:`Secret` values whose ``repr`` and ``str`` never show them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from llmrelay.errors import ConfigError
from llmrelay.policies.breaker_state import CircuitBreakerConfig
from llmrelay.policies.retry import RetryConfig
from llmrelay.routing.strategies import Strategy

KNOWN_PROVIDERS = ("openai", "anthropic", "gemini", "mock")


class Secret:
    """A credential. Only :meth:`reveal` gives the value; everything else shows ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class TimeoutConfig(_Strict, frozen=True):
    """Seconds. ``connect`` and ``idle`` (gap between bytes) bound each attempt; ``total`` the call."""

    connect: float = 10.0
    first_token: float | None = None
    idle: float = 600.0
    total: float | None = 600.0


class TargetConfig(_Strict, frozen=True):
    """One upstream deployment behind an alias. ``options`` are provider-specific (validated there)."""

    provider: str
    model: str | None = None
    api_key: Secret | None = None
    base_url: str | None = None
    weight: float = 1.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    name: str | None = None
    price: float = 0.0
    """Relative cost hint for the ``cheapest`` strategy (e.g. USD per million output tokens)."""

    @property
    def label(self) -> str:
        """How logs, headers and errors name this target (never includes credentials)."""
        return self.name or f"{self.provider}/{self.model or 'default'}"


class ModelConfig(_Strict, frozen=True):
    name: str
    targets: list[TargetConfig]
    fallbacks: list[str] = msgspec.field(default_factory=list)
    strategy: Strategy = "weighted"
    timeout: TimeoutConfig = TimeoutConfig()
    retry: RetryConfig = RetryConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()


class ServerConfig(_Strict, frozen=True):
    """The HTTP face. Without a ``master_key`` and without ``keys`` the server runs open (local
    development, as the README's first command does); with either, every call needs a key.

    ``max_header_bytes`` caps a request's head (request line and headers, as received), answered
    431. The 32 KiB default is nginx's total (4 x 8 KiB buffers) and twice node's and h11's
    16 KiB: a gateway sits behind proxies that add forwarding and tracing headers and may get large
    OIDC bearer tokens, but no LLM API call needs more.
    """

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 4000
    workers: Annotated[int, msgspec.Meta(ge=1)] = 1
    master_key: Secret | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 32 * 1024
    heartbeat: float = 15.0
    log_prompts: bool = False
    graceful_shutdown: float = 30.0
    idempotency_ttl: float = 86_400.0
    idempotency_wait: float = 60.0


class StateConfig(_Strict, frozen=True):
    """Where state lives. Unset: in memory for the library, ``sqlite:///<data dir>/llmrelay.db``
    for the server (the data dir is ``$LLMRELAY_HOME`` or ``~/.llmrelay``)."""

    url: str | None = None


class StaticKey(_Strict, frozen=True):
    """A virtual key declared in config (GitOps); more come from ``llmrelay keys`` / the admin API."""

    key: Secret
    name: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    tier: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    expires_at: float | None = None


class Config(_Strict, frozen=True):
    server: ServerConfig = ServerConfig()
    state: StateConfig = StateConfig()
    keys: list[StaticKey] = msgspec.field(default_factory=list)
    models: list[ModelConfig] = msgspec.field(default_factory=list)

    @property
    def auth_required(self) -> bool:
        return self.server.master_key is not None or bool(self.keys)

    def model(self, alias: str) -> ModelConfig | None:
        for model in self.models:
            if model.name == alias:
                return model
        return None


_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(
    source: str | Path | Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> Config:
    """Load and validate config from a YAML file path or a mapping of the same shape."""
    env = os.environ if environ is None else environ
    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        import yaml  # deferred: only file-based config needs it

        try:
            text, refs = _shield_refs(Path(source).read_text(encoding="utf-8"))
            raw = _unshield_refs(yaml.safe_load(text) or {}, refs)
        except OSError as err:
            raise ConfigError(f"cannot read config file {source}: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {source} is not valid YAML: {err}") from err
    resolved = _resolve_env(raw, env, "$")
    try:
        config = msgspec.convert(resolved, Config, dec_hook=_decode_secret)
    except msgspec.ValidationError as err:
        raise ConfigError(f"invalid config: {err}") from err
    _check(config)
    return config


def with_server_defaults(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """The server keeps state on disk: an unset ``state.url`` becomes SQLite in the data dir.

    The library (``Relay``) keeps an unset URL in memory instead, so importing and using llmrelay
    as a library never writes files a user did not ask for.
    """
    if config.state.url is not None:
        return config
    url = f"sqlite:///{data_dir(environ) / 'llmrelay.db'}"
    return msgspec.structs.replace(config, state=StateConfig(url=url))


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded state lives: ``$LLMRELAY_HOME``, else ``~/.llmrelay``."""
    env = os.environ if environ is None else environ
    return Path(env.get("LLMRELAY_HOME") or Path.home() / ".llmrelay")


def _shield_refs(text: str) -> tuple[str, list[str]]:
    """Swap ``${...}`` for plain placeholders before YAML parsing.

    In YAML flow mappings (``{api_key: ${KEY}}``, the documented config style) ``{`` is syntax, so
    the references are parked as scalar-safe tokens and restored in the parsed values, where the
    usual resolution applies; values never pass through the YAML parser, so they cannot inject.
    """
    refs: list[str] = []

    def park(match: re.Match[str]) -> str:
        refs.append(match.group(0))
        return f"__llmrelay_ref_{len(refs) - 1}__"

    return _REF.sub(park, text), refs


_PARKED = re.compile(r"__llmrelay_ref_(\d+)__")


def _unshield_refs(value: Any, refs: list[str]) -> Any:
    if isinstance(value, str):
        return _PARKED.sub(lambda m: refs[int(m.group(1))], value)
    if isinstance(value, dict):
        return {k: _unshield_refs(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshield_refs(v, refs) for v in value]
    return value


def _decode_secret(kind: type, value: Any) -> Any:
    if kind is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError


def _resolve_env(value: Any, env: Mapping[str, str], path: str) -> Any:
    if isinstance(value, str):
        return _substitute(value, env, path)
    if isinstance(value, Mapping):
        return {k: _resolve_env(v, env, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _substitute(text: str, env: Mapping[str, str], path: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set (referenced at `{path}`)")

    return _REF.sub(replace, text)


def _check(config: Config) -> None:
    """Cross-field rules msgspec cannot express; each message names the offending path."""
    names = [m.name for m in config.models]
    for i, model in enumerate(config.models):
        where = f"$.models[{i}]"
        if names.count(model.name) > 1:
            raise ConfigError(f"duplicate model name {model.name!r} at `{where}.name`")
        if not model.targets:
            raise ConfigError(f"model {model.name!r} has no targets at `{where}.targets`")
        for j, target in enumerate(model.targets):
            if target.provider not in KNOWN_PROVIDERS:
                raise ConfigError(
                    f"unknown provider {target.provider!r} at `{where}.targets[{j}].provider`"
                    f" (known: {', '.join(KNOWN_PROVIDERS)})"
                )
            if target.weight <= 0:
                raise ConfigError(f"weight must be > 0 at `{where}.targets[{j}].weight`")
        for fallback in model.fallbacks:
            if fallback not in names or fallback == model.name:
                raise ConfigError(f"unknown fallback {fallback!r} at `{where}.fallbacks`")


def environment_config(environ: Mapping[str, str] | None = None) -> Config:
    """The zero-config default: a ``mock`` model, plus one alias per provider key found in env."""
    env = os.environ if environ is None else environ
    models: list[dict[str, Any]] = [
        {"name": "mock", "targets": [{"provider": "mock", "model": "mock"}]},
        {"name": "mock-embed", "targets": [{"provider": "mock", "model": "mock-embed"}]},
    ]
    defaults = {
        "OPENAI_API_KEY": ("openai", "gpt-4o-mini"),
        "ANTHROPIC_API_KEY": ("anthropic", "claude-haiku-4-5"),
        "GEMINI_API_KEY": ("gemini", "gemini-2.5-flash"),
    }
    for variable, (provider, model) in defaults.items():
        if env.get(variable):
            models.append(
                {
                    "name": model,
                    "targets": [{"provider": provider, "model": model, "api_key": f"${{{variable}}}"}],
                }
            )
    return load_config({"models": models}, environ=env)


def config_from_environment(environ: Mapping[str, str] | None = None) -> Config:
    """The file named by ``LLMRELAY_CONFIG``, else :func:`environment_config` (server workers)."""
    env = os.environ if environ is None else environ
    path = env.get("LLMRELAY_CONFIG")
    return load_config(path, environ=env) if path else environment_config(env)
