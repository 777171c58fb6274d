"""OpenAI's published OpenAPI schema, as a validator for what llmrelay emits.

The spec (3 MB) is loaded once per process. It mixes OpenAPI 3.0's ``nullable: true`` into a
3.1 document; JSON Schema ignores that keyword, which would reject the ``null`` values OpenAI itself
sends (``finish_reason: null`` in stream chunks), so the loader rewrites it to ``anyOf [..., null]``.

The spec is not in the repo: ``LLMRELAY_OPENAI_SPEC`` names it (default below). Missing, the tests
that use it are skipped locally and fail under ``CI=true``, like a missing service.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.services import require_file

SPEC = Path(os.environ.get("LLMRELAY_OPENAI_SPEC") or "/work/shared/spec/openai-openapi.yaml")
URI = "urn:openai-openapi"

Validate = Callable[[str, Any], None]
"""``validate(component, instance)``: raises ``jsonschema.ValidationError`` when it does not fit."""


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def openai_spec_validator() -> Validate:
    """A validator against ``#/components/schemas/<component>`` (skips, or fails under CI, when the
    spec is missing)."""
    require_file(
        SPEC,
        "OpenAI's OpenAPI spec",
        hint="set LLMRELAY_OPENAI_SPEC to openapi.yaml from github.com/openai/openai-openapi",
    )
    return _validator()


@cache
def _validator() -> Validate:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = _nullable(yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader))
    registry: Registry[Any] = Registry().with_resource(
        URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )

    def check(component: str, instance: Any) -> None:
        schema = {"$ref": f"{URI}#/components/schemas/{component}"}
        jsonschema.Draft202012Validator(schema, registry=registry).validate(instance)

    return check
