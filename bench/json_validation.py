"""Cost of validating a JSON answer against a schema, per KB, for the candidate validators.

Run: ``.venv/bin/python bench/json_validation.py``. Parses with ``json.loads`` (what every
candidate needs first; its cost is shown apart), then validates the parsed value with a validator
compiled once per schema, as ``llmrelay.policies.validate_output`` does. Answers of about 0.5, 2,
8 and 32 KB: a list of records under an object with required fields, enums, patterns and bounds.
Candidates not installed are skipped.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items", "total"],
    "additionalProperties": False,
    "properties": {
        "total": {"type": "integer", "minimum": 0},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "tags", "status", "score"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z]{3}-[0-9]+$"},
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                    "status": {"enum": ["open", "closed", "pending"]},
                    "score": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
    },
}


def answer(kb: float) -> str:
    item = {"id": "abc-1", "name": "a record name", "tags": ["x", "y"], "status": "open", "score": 0.5}
    size = len(json.dumps(item)) + 2
    items = [dict(item, id=f"abc-{i}") for i in range(max(1, int(kb * 1024 / size)))]
    return json.dumps({"items": items, "total": len(items)})


def candidates() -> dict[str, Callable[[Any], object]]:
    found: dict[str, Callable[[Any], object]] = {}
    try:
        import jsonschema_rs

        found["jsonschema-rs"] = jsonschema_rs.validator_for(SCHEMA).is_valid
    except ImportError:
        pass
    try:
        import fastjsonschema

        found["fastjsonschema"] = fastjsonschema.compile(SCHEMA)
    except ImportError:
        pass
    try:
        import jsonschema

        found["jsonschema"] = jsonschema.Draft202012Validator(SCHEMA).is_valid
    except ImportError:
        pass
    return found


def p50_us(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main() -> None:
    print(f"{'validator':16} {'answer':>8} {'p50 µs':>9} {'µs per KB':>10}")
    for kb in (0.5, 2, 8, 32):
        text = answer(kb)
        size_kb = len(text) / 1024
        value = json.loads(text)
        runs = 2000 if kb < 8 else 300
        parse = p50_us(lambda text=text: json.loads(text), runs)  # type: ignore[misc]
        print(f"{'json.loads':16} {size_kb:7.1f}K {parse:9.1f} {parse / size_kb:10.1f}")
        for name, validate in candidates().items():
            cost = p50_us(lambda validate=validate, value=value: validate(value), runs)  # type: ignore[misc]
            print(f"{name:16} {size_kb:7.1f}K {cost:9.1f} {cost / size_kb:10.1f}")


if __name__ == "__main__":
    main()
