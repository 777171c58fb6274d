"""Gateway variants: several llmrelay configs measured in one benchmark run, to price a policy.

``bench/run.py --variant NAME=FILE.yaml`` (repeatable) starts ``llmrelay serve`` once per variant,
in turn, against the same fake upstream and the same load, so "policy on" and "policy off" differ
only by the config. A variant file is an llmrelay config with two conventions:

* the upstream is ``base_url: "${BENCH_UPSTREAM_BASE}"`` (run.py sets it; llmrelay resolves it) and
  the load generator calls the model alias ``bench``;
* an optional top-level ``bench:`` block is read here and removed before llmrelay sees the config:
  ``bench: {headers: {Idempotency-Key: "bench-{n}"}}`` sends those headers with every request,
  ``{n}`` numbered per request.

State (SQLite) goes to a fresh directory per variant (``LLMRELAY_HOME``) unless the file sets
``state.url``. Configs are validated with llmrelay's own loader before anything starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_SPEC = f"llmrelay={HERE / 'variants' / 'baseline.yaml'}"
RESERVED = ("direct", "litellm")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,24}")


@dataclass(frozen=True)
class Variant:
    name: str
    config: dict[str, Any]  # the llmrelay config, ``bench:`` removed
    headers: dict[str, str] = field(default_factory=dict)


def parse_spec(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` -> (name, path); a bare PATH is named after its file stem."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = Path(spec).stem, spec
    if not _NAME.fullmatch(name) or name in RESERVED:
        raise ValueError(f"variant name {name!r}: 1-24 of A-Z a-z 0-9 _ . - and not {'/'.join(RESERVED)}")
    return name, Path(path)


def from_mapping(name: str, raw: Mapping[str, Any]) -> Variant:
    """Split the ``bench:`` block off an llmrelay config mapping (pure)."""
    config = dict(raw)
    extra = config.pop("bench", None) or {}
    if not isinstance(extra, Mapping) or set(extra) - {"headers"}:
        raise ValueError(f"variant {name}: `bench:` takes only `headers`")
    headers = extra.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValueError(f"variant {name}: `bench.headers` must map header names to strings")
    return Variant(name, config, dict(headers))


def load(spec: str) -> Variant:
    """Read a ``NAME=PATH`` variant and validate its config as ``llmrelay serve`` would."""
    from llmrelay.config import load_config
    from llmrelay.errors import RelayError

    name, path = parse_spec(spec)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"variant {name}: cannot read {path}: {err}") from err
    if not isinstance(raw, Mapping):
        raise ValueError(f"variant {name}: {path} is not a mapping")
    variant = from_mapping(name, raw)
    try:
        config = load_config(variant.config, environ={"BENCH_UPSTREAM_BASE": "http://127.0.0.1:1/v1"})
    except RelayError as err:
        raise ValueError(f"variant {name}: {path}: {err}") from err
    if config.model("bench") is None:
        raise ValueError(f"variant {name}: {path} has no model named `bench` (the load generator calls it)")
    return variant


def load_all(specs: list[str]) -> list[Variant]:
    variants = [load(spec) for spec in specs or [DEFAULT_SPEC]]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must differ: {names}")
    return variants
