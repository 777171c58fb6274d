"""JSON-schema checks: of an answer against the schema a request asked for, and of a schema itself.

Used by :mod:`llmrelay.policies.validate_output` (is the answer the JSON the request asked for?)
and :mod:`llmrelay.policies.validate_input` (is each tool's ``parameters`` a valid JSON schema?).

The validator is ``jsonschema-rs``, chosen by measurement (``bench/json_validation.py``: about
3 µs per KB of answer against 30 for ``fastjsonschema`` and 770 for ``jsonschema``, after a
``json.loads`` of about 14 µs per KB). Its regular expressions run in linear time, so a caller's
``pattern`` cannot stall the gateway, and it is built ``offline``: a ``$ref`` to a URL is an
error, never a request from inside the gateway's network. A compiled validator is kept per
schema (by its JSON text, a bounded LRU), since clients send the same few schemas again and
again. Messages are capped; they may quote the answer (which the caller asked for anyway), never
anything else.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

from llmrelay.errors import InvalidRequest
from llmrelay.types import ResponseFormat

Check = Callable[[str], str | None]
"""An answer's text -> ``None`` when it is valid, else what is wrong (one line)."""

_CACHED = 256
_MAX_PROBLEM = 300


class SchemaCache:
    """Compiled answer checks by schema (bounded; one per pipeline)."""

    def __init__(self, size: int = _CACHED) -> None:
        self._size = size
        self._checks: OrderedDict[bytes, Check] = OrderedDict()
        self._valid: OrderedDict[bytes, None] = OrderedDict()

    def check_for(self, response_format: ResponseFormat) -> Check:
        """The check of ``response_format`` (``json_object`` or ``json_schema``); a schema that
        is not valid is the caller's :class:`InvalidRequest` (``param: response_format``)."""
        schema = response_format.json_schema
        if response_format.type != "json_schema" or schema is None:
            return _json_object
        key = msgspec.json.encode(schema)
        check = self._checks.get(key)
        if check is not None:
            self._checks.move_to_end(key)
            return check
        check = _schema_check(schema)
        self._checks[key] = check
        if len(self._checks) > self._size:
            self._checks.popitem(last=False)
        return check

    def schema_problem(self, schema: Any) -> str | None:
        """:func:`schema_problem`, remembering schemas found valid (a tool list is sent with
        every request of a conversation: about 0.5 µs each then, instead of about 30)."""
        key = msgspec.json.encode(schema)
        if key in self._valid:
            self._valid.move_to_end(key)
            return None
        problem = schema_problem(schema)
        if problem is None:
            self._valid[key] = None
            if len(self._valid) > self._size * 4:
                self._valid.popitem(last=False)
        return problem


def schema_problem(schema: Any) -> str | None:
    """What makes ``schema`` an invalid JSON schema (one line), or ``None``."""
    import jsonschema_rs  # deferred: only configured checks need it

    try:
        jsonschema_rs.meta.validate(schema)
        jsonschema_rs.validator_for(schema, offline=True)
    except jsonschema_rs.ValidationError as err:
        return _one_line(err.message)
    except (ValueError, TypeError) as err:
        return _one_line(str(err))
    return None


def _json_object(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError as err:
        return f"not valid JSON: {err}"
    return None if isinstance(value, dict) else "valid JSON, but not an object"


def _schema_check(schema: dict[str, Any]) -> Check:
    import jsonschema_rs  # deferred: only configured checks need it

    problem = schema_problem(schema)
    if problem is not None:
        raise InvalidRequest(
            f"response_format.json_schema is not a valid JSON schema: {problem}", param="response_format"
        )
    validator = jsonschema_rs.validator_for(schema, offline=True)

    def check(text: str) -> str | None:
        try:
            value = json.loads(text)
        except ValueError as err:
            return f"not valid JSON: {err}"
        if validator.is_valid(value):
            return None
        error = next(iter(validator.iter_errors(value)))
        where = "/".join(str(step) for step in error.instance_path)
        return _one_line(f"at /{where}: {error.message}" if where else error.message)

    return check


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_PROBLEM else text[: _MAX_PROBLEM - 1] + "…"
