"""Wildcard model names: which configured alias a requested model name resolves to.

A configured name with one ``*`` is a **pattern** (``openai/*``, ``semcache-eval-*``, ``*``); any
other name is a **named alias**. A requested name resolves, in this order, to:

1. the named alias of that exact name (a named alias always wins over a pattern);
2. else the longest matching pattern (``openai/gpt-*`` wins over ``openai/*`` for
   ``openai/gpt-4o``); between patterns of the same length, the first in the config;
3. else nothing (the caller's 404).

The ``*`` matches one or more characters: ``openai/`` alone matches no ``openai/*``, so a
pass-through target never sends an empty model upstream.

One pure function, :func:`resolve`, decides for everything that looks a name up: the router (once
per request), the server's deadline lookup, the key checks and ``/v1/models``. :class:`ModelNames`
splits the names once so that a lookup is a dict probe plus one test per pattern.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass

WILDCARD = "*"


def is_pattern(name: str) -> bool:
    return WILDCARD in name


def match(pattern: str, name: str) -> str | None:
    """The part of ``name`` that the pattern's ``*`` covers (never empty), or ``None``."""
    prefix, _, suffix = pattern.partition(WILDCARD)
    if len(name) <= len(prefix) + len(suffix):
        return None
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    return name[len(prefix) : len(name) - len(suffix)]


def fill(template: str, captured: str) -> str:
    """A target's model with its ``*`` replaced by the captured part (``*`` alone: the part)."""
    return template.replace(WILDCARD, captured, 1)


@dataclass(frozen=True, slots=True)
class Resolved:
    """``alias`` is the configured name (a pattern for a wildcard match); ``captured`` is what the
    ``*`` matched, ``None`` for a named alias."""

    alias: str
    captured: str | None = None


def resolve(name: str, named: Container[str], patterns: Sequence[str]) -> Resolved | None:
    """The alias ``name`` resolves to; ``patterns`` must be longest first (see :func:`by_length`)."""
    if name in named:
        return Resolved(name)
    for pattern in patterns:
        captured = match(pattern, name)
        if captured is not None:
            return Resolved(pattern, captured)
    return None


def by_length(patterns: Iterable[str]) -> tuple[str, ...]:
    """Longest first; a stable sort keeps the config's order between patterns of one length."""
    return tuple(sorted(patterns, key=len, reverse=True))


def allows(entries: Sequence[str], name: str) -> bool:
    """Whether a key's ``models`` list lets it use ``name``: no entries allow everything; an entry
    is an exact name or a pattern (a key's ``openai/*`` reaches ``openai/x``, and the alias
    ``openai/gpt-*`` itself, whose every match it also reaches)."""
    if not entries or name in entries:
        return True
    return any(is_pattern(entry) and match(entry, name) is not None for entry in entries)


class ModelNames:
    """The configured names split once: named aliases in a set, patterns longest first."""

    __slots__ = ("_named", "_patterns", "names")

    def __init__(self, names: Iterable[str]) -> None:
        self.names: tuple[str, ...] = tuple(names)
        """Every configured name (named aliases and patterns) in config order."""
        self._named = frozenset(n for n in self.names if not is_pattern(n))
        self._patterns = by_length(n for n in self.names if is_pattern(n))

    def resolve(self, name: str) -> Resolved | None:
        return resolve(name, self._named, self._patterns)

    def alias(self, name: str) -> str | None:
        """The configured name (alias or pattern) ``name`` resolves to, ``None`` for none."""
        found = self.resolve(name)
        return found.alias if found is not None else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) is not None
