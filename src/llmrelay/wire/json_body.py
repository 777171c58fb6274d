"""Untrusted JSON request bodies -> one JSON object, or :class:`InvalidRequest`.

Every inbound decoder (OpenAI chat and embeddings, Anthropic messages, the admin API) starts here,
so hostile bytes fail the same way everywhere: a 400 that says what is wrong, never an exception
the server would answer with a 500. Two failures need care beyond ``DecodeError``:

* **Bytes that are not UTF-8** inside a JSON string make msgspec raise ``UnicodeDecodeError``.
* **Deep nesting.** msgspec guards its recursion with the interpreter's limit, so whether a body
  nested 950 levels decodes depends on how deep the caller's stack already is, and a body that does
  decode can still blow the stack later, when a codec converts or re-encodes it (a 500). A fixed
  cap, checked once here, makes the answer depend on the body alone: :data:`MAX_DEPTH` is 64, the
  default of .NET's ``System.Text.Json``. A chat request's envelope takes 5 levels down to a tool's
  ``parameters`` and each nested object schema 2 more, so ~29 nested schema levels fit (OpenAI's
  strict structured outputs allow far fewer).

:func:`validation_message` is what every decoder says about a body of the wrong shape: msgspec's
message without the rejected value (``Invalid enum value '…'`` quotes it), which may be a secret
or personal data put in the wrong field; the path still tells the caller where.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from llmrelay.errors import InvalidRequest

MAX_DEPTH = 64
_QUOTED_VALUE = re.compile(r"^(Invalid (?:enum )?value) (['\"]).*\2(?= - at `[^`]*`$|$)", re.DOTALL)
"""The value, in either quote, up to the *last* `` - at `path` `` (the value may hold that text)."""


def decode_json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object nested at most :data:`MAX_DEPTH` levels."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        raise InvalidRequest(f"request body is not valid JSON: {err}") from err
    except UnicodeDecodeError as err:
        raise InvalidRequest(
            f"request body is not valid UTF-8 (byte {err.start}): JSON must be UTF-8 encoded"
        ) from err
    except RecursionError as err:
        raise _too_deep() from err
    if not isinstance(raw, dict):
        raise InvalidRequest("request body must be a JSON object")
    if _deeper_than(raw, MAX_DEPTH):
        raise _too_deep()
    return raw


def _deeper_than(value: dict[str, Any], limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels.

    Level by level, without recursion (nothing to exhaust) and without per-node tuples: about
    20 µs for a 50-message chat request, well under the cost of decoding the worst 4 MiB body.
    msgspec only yields exact ``dict`` and ``list`` containers, hence the exact type checks.
    """
    level: list[Any] = [value]
    depth = 1
    while level:
        below: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        if below and depth >= limit:
            return True
        level = below
        depth += 1
    return False


def _too_deep() -> InvalidRequest:
    return InvalidRequest(f"request body is nested too deeply (more than {MAX_DEPTH} levels)")


def validation_message(err: msgspec.ValidationError) -> str:
    """msgspec's message for ``err`` without the caller's value (see the module docstring)."""
    return _QUOTED_VALUE.sub(r"\1", str(err))
