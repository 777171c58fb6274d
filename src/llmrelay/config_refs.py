"""``${VAR}`` and ``${VAR:-default}`` in config: found before YAML parsing, resolved after it.

Pure (the environment comes in as a mapping; :mod:`llmrelay.config` is what reads it). Values are
substituted as text and never pass through the YAML parser, so a value cannot inject structure;
the field's type is applied afterwards, by the config's validation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmrelay.errors import ConfigError

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def shield_refs(text: str) -> tuple[str, list[str]]:
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


def unshield_refs(value: Any, refs: list[str]) -> Any:
    """Put the parked references back into the parsed values (still unresolved)."""
    if isinstance(value, str):
        return _PARKED.sub(lambda m: refs[int(m.group(1))], value)
    if isinstance(value, dict):
        return {k: unshield_refs(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [unshield_refs(v, refs) for v in value]
    return value


def resolve_env(value: Any, env: Mapping[str, str], path: str) -> Any:
    """Every reference replaced by its variable (or default); a missing one names its path."""
    if isinstance(value, str):
        return _substitute(value, env, path)
    if isinstance(value, Mapping):
        return {k: resolve_env(v, env, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
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
