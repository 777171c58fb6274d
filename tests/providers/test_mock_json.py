"""The mock's minimal schema instances, checked by an independent validator (``jsonschema``)."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Any, Literal

import jsonschema
import openai
import pydantic
import pytest

from llmrelay.providers.mock_json import minimal_instance


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Node(pydantic.BaseModel):
    name: str
    children: list[Node]
    parent: Node | None


class Address(pydantic.BaseModel):
    street: str
    zip_code: str = pydantic.Field(min_length=5)


class Person(pydantic.BaseModel):
    name: str
    born: datetime.datetime
    birthday: datetime.date
    id: uuid.UUID
    color: Color
    kind: Literal["a", "b"]
    tags: list[str]
    score: float = pydantic.Field(gt=1.5, le=10)
    rank: int = pydantic.Field(ge=3, multiple_of=2)
    age: int | None
    home: Address
    addresses: list[Address]
    tree: Node


def sdk_schema(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The strict schema the ``openai`` SDK sends for ``response_format=model`` / a pydantic tool."""
    schema: dict[str, Any] = openai.pydantic_function_tool(model)["function"]["parameters"]
    return schema


SCHEMAS: list[Any] = [
    {"type": "object"},
    {"type": "string"},
    {"type": "string", "minLength": 3},
    {"type": "string", "format": "date-time"},
    {"type": "integer", "minimum": 5},
    {"type": "integer", "exclusiveMinimum": 5},
    {"type": "integer", "maximum": -3},
    {"type": "integer", "exclusiveMaximum": -3},
    {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 0.7},
    {"type": "integer", "minimum": 1, "multipleOf": 7},
    {"type": "boolean"},
    {"type": "null"},
    {"type": ["integer", "null"]},
    {"enum": ["x", "y"]},
    {"const": {"fixed": [1, 2]}},
    {"type": "array", "items": {"type": "string", "enum": ["q"]}, "minItems": 3},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 2},
    {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {
                "type": "object",
                "properties": {"c": {"type": "integer", "minimum": 2}},
                "required": ["c"],
            },
            "optional": {"type": "string"},
        },
        "required": ["a", "b"],
        "additionalProperties": False,
    },
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "minProperties": 2},
    {"anyOf": [{"type": "string", "minLength": 2}, {"type": "null"}]},
    {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
    {
        "allOf": [{"$ref": "#/$defs/a"}, {"required": ["y"], "properties": {"y": {"const": 1}}}],
        "$defs": {"a": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}},
    },
    {
        "type": "object",
        "properties": {"item": {"$ref": "#/definitions/Item"}},
        "required": ["item"],
        "definitions": {
            "Item": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
        },
    },
    {
        "$defs": {
            "Tree": {
                "type": "object",
                "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Tree"}, {"type": "null"}]}},
                "required": ["next"],
            }
        },
        "$ref": "#/$defs/Tree",
    },
    {"type": "object", "properties": {"any": {}}, "required": ["any"]},
    True,
    sdk_schema(Person),
    sdk_schema(Node),
    Person.model_json_schema(),
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instance_validates(schema: Any) -> None:
    instance = minimal_instance(schema)
    jsonschema.validate(instance, schema, format_checker=jsonschema.FormatChecker())


def test_pydantic_parses_the_instance_of_its_own_schema() -> None:
    person = Person.model_validate(minimal_instance(sdk_schema(Person)))
    assert person.kind == "a" and person.color is Color.RED
    assert 1.5 < person.score <= 10 and person.rank >= 3 and person.rank % 2 == 0
    assert len(person.home.zip_code) >= 5


def test_minimal_means_required_fields_only() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["b"],
    }
    assert minimal_instance(schema) == {"b": 0}


@pytest.mark.parametrize(
    "schema",
    [
        False,
        {"enum": []},
        {"$ref": "#/$defs/missing"},
        {"$ref": "https://example.com/schema.json"},
        {
            "$defs": {
                "Loop": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Loop"}}, "required": ["x"]}
            },
            "$ref": "#/$defs/Loop",
        },
    ],
)
def test_unsatisfiable_schemas_are_a_value_error(schema: Any) -> None:
    with pytest.raises(ValueError, match="cannot build"):
        minimal_instance(schema)
