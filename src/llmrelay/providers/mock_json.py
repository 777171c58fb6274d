"""A minimal JSON value that validates against a JSON schema: the mock provider's structured answer.

Pure. :mod:`llmrelay.providers.mock` answers a ``json_schema`` response format (and a forced tool
call) with :func:`minimal_instance`, so ``client.chat.completions.parse(model="mock", ...)`` and
any code validating structured output can run against the mock with no network. It is not a
general schema solver: it covers what structured-output schemas are made of (what the ``openai``
SDK generates from a pydantic model, and OpenAI's strict subset):

- ``type`` (first listed when several), ``enum`` (first value), ``const``;
- objects: every ``required`` property (optional ones are left out: that is the minimal instance),
  ``minProperties`` is met by adding optional properties in order;
- arrays: ``minItems`` copies of the ``items`` instance after any ``prefixItems``;
- strings: ``minLength`` padding and the common ``format`` values, because pydantic parses those
  (an empty string is not a ``date-time``); ``pattern`` is not solved;
- numbers: ``minimum`` / ``exclusiveMinimum`` / ``maximum`` / ``exclusiveMaximum`` / ``multipleOf``;
- ``anyOf`` / ``oneOf``: the first branch that terminates (a branch that recurses into a definition
  being built is skipped, so ``Optional`` self-references end with ``null``); ``allOf``: its
  branches merged; ``$ref`` to ``#/$defs/...`` or ``#/definitions/...`` (any local JSON pointer).

Known limits, none of which the SDK's pydantic schemas produce: ``uniqueItems`` with
``minItems > 1`` of a single value, ``pattern``, ``not``, ``if/then/else`` and remote ``$ref``.
"""

from __future__ import annotations

import math
from typing import Any

_FORMATS: dict[str, str] = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "duration": "P0D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com",
    "iri": "https://example.com",
    "uri-reference": "https://example.com",
    "iri-reference": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "json-pointer": "",
    "regex": ".*",
}

_MAX_DEPTH = 64


class _Unsatisfiable(Exception):
    """This branch recurses without end or cannot be met; a caller with alternatives tries the next."""


def minimal_instance(schema: Any) -> Any:
    """A small JSON value valid against ``schema``; ``ValueError`` when none can be built."""
    try:
        return _Builder(schema).build(schema, ())
    except _Unsatisfiable as err:
        raise ValueError(f"cannot build an instance of this schema: {err}") from err


class _Builder:
    def __init__(self, root: Any) -> None:
        self._root = root

    def build(self, schema: Any, refs: tuple[str, ...]) -> Any:
        """``refs`` is the chain of ``$ref`` targets being expanded (cycle detection)."""
        if len(refs) > _MAX_DEPTH:
            raise _Unsatisfiable("schema nests too deeply")
        if schema is True or schema == {}:
            return None
        if schema is False or not isinstance(schema, dict):
            raise _Unsatisfiable("a false schema accepts nothing")
        if "$ref" in schema:
            ref = schema["$ref"]
            if ref in refs:
                raise _Unsatisfiable(f"{ref} refers to itself")
            target = self._resolve(ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            return self.build(_merge([target, siblings]) if siblings else target, (*refs, ref))
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            if not schema["enum"]:
                raise _Unsatisfiable("an empty enum accepts nothing")
            return schema["enum"][0]
        if "allOf" in schema:
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            parts = [self._expand(s, refs) for s in schema["allOf"]]
            return self.build(_merge([*parts, rest]), refs)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._first_branch(schema, key, refs)
        return self._typed(schema, refs)

    def _first_branch(self, schema: dict[str, Any], key: str, refs: tuple[str, ...]) -> Any:
        rest = {k: v for k, v in schema.items() if k != key}
        reasons = []
        for branch in schema[key]:
            try:
                return self.build(_merge([rest, branch]) if rest else branch, refs)
            except _Unsatisfiable as err:
                reasons.append(str(err))
        raise _Unsatisfiable(f"no branch of {key} can be built ({'; '.join(reasons)})")

    def _expand(self, schema: Any, refs: tuple[str, ...]) -> Any:
        """An ``allOf`` member with its ``$ref`` resolved, so the members can be merged."""
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in refs:
                raise _Unsatisfiable(f"{ref} refers to itself")
            refs = (*refs, ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge([self._resolve(ref), siblings])
        return schema

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Unsatisfiable(f"only local $ref values are supported, not {ref!r}")
        node = self._root
        for token in ref[1:].split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise _Unsatisfiable(f"$ref {ref} points nowhere")
        return node

    def _typed(self, schema: dict[str, Any], refs: tuple[str, ...]) -> Any:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = kind[0] if kind else None
        if kind is None:
            if "properties" in schema or "required" in schema:
                kind = "object"
            elif "items" in schema or "prefixItems" in schema:
                kind = "array"
            else:
                return None  # unconstrained: null is as valid as anything
        if kind == "object":
            return self._object(schema, refs)
        if kind == "array":
            return self._array(schema, refs)
        if kind == "string":
            return _string(schema)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return False
        if kind == "null":
            return None
        raise _Unsatisfiable(f"unknown type {kind!r}")

    def _object(self, schema: dict[str, Any], refs: tuple[str, ...]) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties") or {}
        names = list(dict.fromkeys(schema.get("required") or ()))
        for name in properties:
            if len(names) >= schema.get("minProperties", 0):
                break
            if name not in names:
                names.append(name)
        extra = schema.get("additionalProperties", True)
        return {name: self.build(properties.get(name, extra), refs) for name in names}

    def _array(self, schema: dict[str, Any], refs: tuple[str, ...]) -> list[Any]:
        prefix = [self.build(s, refs) for s in schema.get("prefixItems") or ()]
        missing = max(0, schema.get("minItems", 0) - len(prefix))
        if not missing:
            return prefix
        items = schema.get("items", True)
        return prefix + [self.build(items, refs) for _ in range(missing)]


def _merge(schemas: list[Any]) -> dict[str, Any]:
    """``allOf`` members (and ``$ref`` siblings) as one schema: keys combined, ``required`` united."""
    merged: dict[str, Any] = {}
    for schema in schemas:
        if schema is True:
            continue
        if not isinstance(schema, dict):
            raise _Unsatisfiable("a false schema accepts nothing")
        for key, value in schema.items():
            if key == "properties" and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            elif key == "required" and isinstance(merged.get(key), list):
                merged[key] = [*merged[key], *value]
            else:
                merged[key] = value
    return merged


def _string(schema: dict[str, Any]) -> str:
    value = _FORMATS.get(schema.get("format", ""), "")
    shortest = schema.get("minLength", 0)
    if len(value) < shortest:
        value += "x" * (shortest - len(value))
    return value


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum", max)
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum", min)
    step = schema.get("multipleOf")
    value: float = 0
    if low is not None and (value < low or (low_open and value <= low)):
        value = low
        if low_open:
            value = math.floor(low) + 1 if integer else low + (1 if high is None else (high - low) / 2)
    elif high is not None and (value > high or (high_open and value >= high)):
        value = high
        if high_open:
            value = math.ceil(high) - 1 if integer else high - (1 if low is None else (high - low) / 2)
    if integer:
        value = math.ceil(value)
    if step:
        value = math.ceil(value / step) * step
    return int(value) if integer or float(value).is_integer() else value


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, pick: Any) -> tuple[float | None, bool]:
    """The tighter of the inclusive and exclusive bound (draft 6+ numbers; draft 4 booleans too)."""
    found: list[tuple[float, bool]] = []
    if isinstance(schema.get(inclusive), int | float):
        draft4_open = schema.get(exclusive) is True
        found.append((schema[inclusive], draft4_open))
    if isinstance(schema.get(exclusive), int | float) and not isinstance(schema.get(exclusive), bool):
        found.append((schema[exclusive], True))
    if not found:
        return None, False
    value = pick(v for v, _ in found)
    return value, any(o for v, o in found if v == value)
