"""A request's cost-attribution tags: the ``x-llmrelay-tags`` header and the body's ``metadata``.

``x-llmrelay-tags: feature=search,customer=acme`` and an OpenAI chat request's ``metadata``
object (``{"feature": "search"}``, string values, which OpenAI itself allows up to 16 of) both
become ``Context.tags``; the header wins over the body for the same name, and the key's own
metadata (set by an operator) wins over both, so a caller cannot re-attribute what its key says.
Bounded: at most :data:`MAX_TAGS` tags, names of 1-64 characters from ``[A-Za-z0-9_.-]``, values of
at most 256 characters; anything else is a 400 naming the header or field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmrelay.errors import InvalidRequest

HEADER = "x-llmrelay-tags"
MAX_TAGS = 16
MAX_VALUE = 256
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def request_tags(header: str | None, metadata: Any) -> dict[str, str]:
    """The tags a request carries (empty when it carries none)."""
    tags: dict[str, str] = {}
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidRequest("`metadata` must be an object of string values", param="metadata")
        for name, value in metadata.items():
            if not isinstance(value, str):
                raise InvalidRequest(f"`metadata.{name}` must be a string", param="metadata")
            tags[_name(name, "metadata")] = _value(value, "metadata")
    if header:
        for item in header.split(","):
            name, equals, value = item.partition("=")
            if not equals:
                raise InvalidRequest(f"{HEADER} takes name=value pairs separated by commas", param=HEADER)
            tags[_name(name.strip(), HEADER)] = _value(value.strip(), HEADER)
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"at most {MAX_TAGS} tags per request, got {len(tags)}", param=HEADER)
    return tags


def _name(name: str, param: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"invalid tag name {name[:64]!r} in {param}: 1-64 characters of letters, digits, _ . -",
            param=param,
        )
    return name


def _value(value: str, param: str) -> str:
    if len(value) > MAX_VALUE or not value.isprintable():
        raise InvalidRequest(
            f"a tag value in {param} must be printable, at most {MAX_VALUE} characters", param=param
        )
    return value
