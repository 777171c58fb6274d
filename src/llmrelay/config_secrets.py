"""Credentials in the config: :class:`Secret` (never shown), and where a provider key comes from
(:class:`KeySource`: inline text or ``${VAR}``, a file, or a command), decoded by
:func:`decode_secret` while the config loads (:mod:`llmrelay.config`). Read at run time by
:mod:`llmrelay.secret_sources`.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import msgspec
from msgspec import Meta

_Positive = Annotated[float, Meta(gt=0)]


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Secret:
    """A credential. Only :meth:`reveal` gives the value; everything else shows ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        # Constant time, as every comparison of secrets in llmrelay (docs/architecture.md §9).
        return isinstance(other, Secret) and hmac.compare_digest(other._value.encode(), self._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


class FileSecret(_Strict, frozen=True):
    """A provider key read from a file (a Docker or Kubernetes secret), re-read when it changes:
    its ``stat`` is looked at no more than once per ``refresh`` seconds, on a request's path."""

    file: str
    refresh: _Positive = 5.0


class CommandSecret(_Strict, frozen=True):
    """A provider key printed by a command (``vault kv get -field=key ...``, ``op read ...``,
    ``aws secretsmanager ...``): run at start-up and every ``refresh`` seconds in the background,
    killed after ``timeout`` seconds."""

    exec: Annotated[list[str], Meta(min_length=1)]
    refresh: _Positive = 300.0
    timeout: _Positive = 5.0


class KeySource:
    """Where one provider key comes from: a :class:`Secret` (text or ``${VAR}``, also written
    ``{key: ...}``), a :class:`FileSecret` or a :class:`CommandSecret`. Read by
    :mod:`llmrelay.secret_sources`. Any of the mapping forms may add this key's own upstream
    limits, ``rpm`` and ``tpm`` (its account's requests and tokens per minute:
    :mod:`llmrelay.providers.upstream_limits`)."""

    __slots__ = ("rpm", "spec", "tpm")

    def __init__(
        self, spec: Secret | FileSecret | CommandSecret, *, rpm: int | None = None, tpm: int | None = None
    ) -> None:
        self.spec = spec
        self.rpm = rpm
        self.tpm = tpm

    def __repr__(self) -> str:
        spec = self.spec
        if isinstance(spec, FileSecret):
            return f"KeySource(file={spec.file!r})"
        if isinstance(spec, CommandSecret):
            return f"KeySource(exec={spec.exec[0]!r})"  # only the program: arguments may hold tokens
        return f"KeySource({spec!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, KeySource)
            and other.spec == self.spec
            and (other.rpm, other.tpm) == (self.rpm, self.tpm)
        )

    def __hash__(self) -> int:
        return hash((self.spec, self.rpm, self.tpm))


def decode_secret(kind: type, value: Any) -> Any:
    """msgspec's decode hook for the config: text to :class:`Secret`, any key form to :class:`KeySource`."""
    if kind is Secret and isinstance(value, str):
        return Secret(value)
    if kind is KeySource:
        if isinstance(value, str):
            return KeySource(Secret(value))
        spec: type[FileSecret | CommandSecret] | None = None
        if isinstance(value, dict):
            value = dict(value)
            rpm, tpm = _per_minute(value.pop("rpm", None), "rpm"), _per_minute(value.pop("tpm", None), "tpm")
            if set(value) == {"key"} and isinstance(value["key"], str):
                return KeySource(Secret(value["key"]), rpm=rpm, tpm=tpm)
            spec = FileSecret if "file" in value else CommandSecret if "exec" in value else None
        if spec is None:
            raise ValueError(
                "expected a key, `{key: <key>}`, `{file: <path>}` or `{exec: [<command>, ...]}`"
                " (each mapping may add `rpm` and `tpm`)"
            )
        try:
            return KeySource(msgspec.convert(value, spec, strict=False), rpm=rpm, tpm=tpm)
        except msgspec.ValidationError as err:
            # msgspec adds the key's path; the field inside it is named here: "... (`exec`)".
            problem, _, field = str(err).partition(" - at `$.")
            raise ValueError(f"{problem} (`{field[:-1]}`)" if field else problem) from err
    raise NotImplementedError


_PerMinute = Annotated[int, Meta(ge=1)]


def _per_minute(value: Any, name: str) -> int | None:
    """A key entry's ``rpm`` or ``tpm``: a whole number of at least 1 (``${VAR}`` text too)."""
    if value is None:
        return None
    try:
        number: int = msgspec.convert(value, _PerMinute, strict=False)
    except msgspec.ValidationError as err:
        raise ValueError(f"{err} (`{name}`)") from err
    return number
