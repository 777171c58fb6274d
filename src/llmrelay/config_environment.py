"""What the environment decides about a config: the server's data dir and its default state, the
zero-config models (``mock``, plus one alias per provider key found), and what ``llmrelay serve``
hands its worker processes (the config file's path, the shared metrics directory).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from llmrelay.config import Config, load_config


def with_server_defaults(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """The server keeps state on disk: an unset ``state.url`` becomes SQLite in the data dir.

    The library (``Relay``) keeps an unset URL in memory instead, so importing and using llmrelay
    as a library never writes files a user did not ask for. The data dir is created here (owner
    only), as it is the default; the directory of an explicit ``sqlite:`` URL must already exist.
    """
    if config.state.url is not None:
        return config
    home = data_dir(environ)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = f"sqlite:///{home / 'llmrelay.db'}"
    return msgspec.structs.replace(config, state=msgspec.structs.replace(config.state, url=url))


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded state lives: ``$LLMRELAY_HOME``, else ``~/.llmrelay``."""
    env = os.environ if environ is None else environ
    return Path(env.get("LLMRELAY_HOME") or Path.home() / ".llmrelay")


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


def metrics_dir_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The shared Prometheus directory ``serve`` made for its workers (``None``: one process)."""
    env = os.environ if environ is None else environ
    return env.get("PROMETHEUS_MULTIPROC_DIR") or None


def config_from_environment(environ: Mapping[str, str] | None = None) -> Config:
    """The file named by ``LLMRELAY_CONFIG``, else :func:`environment_config` (server workers)."""
    env = os.environ if environ is None else environ
    path = env.get("LLMRELAY_CONFIG")
    return load_config(path, environ=env) if path else environment_config(env)
