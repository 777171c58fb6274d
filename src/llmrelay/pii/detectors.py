"""What counts as PII: one pattern per kind, and the checksum that confirms a candidate.

A pattern finds candidates cheaply; a check (Luhn for card numbers, ISO 7064 mod 97 for IBANs,
the SSA's rules for US social security numbers, the check letter of Spanish DNI/NIE numbers,
``ipaddress`` for IPv6) throws out the numbers that only look like one, so order numbers and
timestamps stay readable. A check answers how many characters of the candidate are the real
thing (an IBAN pattern may run on into the next word), or ``None``.

Custom detectors (``{name, pattern}`` from config) are plain regular expressions, without a
check. Quantifiers are bounded, so no input makes a built-in pattern backtrack for long; see
:class:`DetectorSet` for how the kinds are looked for quickly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["email", "phone", "card", "iban", "ssn", "es_id", "ip", "secret"]
KINDS: tuple[Kind, ...] = ("email", "phone", "card", "iban", "ssn", "es_id", "ip", "secret")

Check = Callable[[str], int | None]
"""A candidate -> the length of its valid prefix, or ``None`` when it is not the real thing."""


@dataclass(frozen=True)
class Detector:
    label: str
    """The placeholder's name: ``<EMAIL_1>``, ``[EMAIL]``."""
    pattern: str
    check: Check | None = None


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


def _whole(valid: Callable[[str], bool]) -> Check:
    return lambda text: len(text) if valid(text) else None


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn(number: str) -> bool:
    total, double = 0, False
    for c in reversed(number):
        d = ord(c) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def card(text: str) -> int | None:
    """The length of the longest card number (13-19 digits, Luhn) at the start of ``text``: a
    pattern that ran on into the next number (``4111 1111 1111 1111 123``) is cut back."""
    ends = [
        i + 1 for i, c in enumerate(text) if c.isdigit() and (i + 1 == len(text) or not text[i + 1].isdigit())
    ]
    for end in reversed(ends):
        digits = _digits(text[:end])
        if 13 <= len(digits) <= 19 and luhn(digits):
            return end
    return None


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28,
    "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip


def iban(text: str) -> int | None:
    """The length of the IBAN at the start of ``text`` (spaces allowed) if its check digits hold."""
    length = _IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    compact, end = "", 0
    for end, c in enumerate(text, 1):  # noqa: B007 (end is read after the loop)
        if c != " ":
            compact += c
            if len(compact) == length:
                break
    if len(compact) != length:
        return None
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return end if int(number) % 97 == 1 else None


def _ssn(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _es_id(text: str) -> bool:
    """Spanish DNI (8 digits) or NIE (X/Y/Z and 7 digits) with its check letter."""
    text = text.replace("-", "")
    number = text[:-1]
    if number[0] in "XYZ":
        number = str("XYZ".index(number[0])) + number[1:]
    return _DNI_LETTERS[int(number) % 23] == text[-1]


def _ip(text: str) -> int | None:
    if ":" not in text:
        return len(text)  # the IPv4 pattern is exact
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return len(text)


def _phone(text: str) -> bool:
    return 8 <= len(_digits(text)) <= 15


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

EMAIL_DOMAIN = re.compile(r"@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b")
_LOCAL_PART = re.compile(r"[\w.+%-]{1,64}\Z")

SECRET_PREFIXES = ("sk-", "AIza", "gh", "xox", "AKIA", "eyJ", "Bearer ", "-----BEGIN")
SECRET = re.compile(
    r"(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,200}|AIza[0-9A-Za-z_-]{30,40}|gh[pousr]_[A-Za-z0-9]{30,80}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,200}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{8,2000}\.[A-Za-z0-9_-]{8,2000}"
    r"\.[A-Za-z0-9_-]{0,2000}|Bearer [A-Za-z0-9._~+/=-]{16,500}|-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----)"
)

NUMBERED: dict[Kind, Detector] = {
    "iban": Detector("IBAN", r"(?<!\w)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}", iban),
    "card": Detector("CARD", r"(?<!\w)\d(?:[ -]?\d){12,18}\b", card),
    "ssn": Detector("SSN", r"(?<!\w)\d{3}-\d{2}-\d{4}\b", _whole(_ssn)),
    "es_id": Detector("ES_ID", r"(?<!\w)[XYZ0-9]\d{7}-?[A-Z]\b", _whole(_es_id)),
    "ip": Detector(
        "IP",
        rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}\b(?!\.\d)"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::?[0-9A-Fa-f]{1,4}){1,7})(?![\w:])",
        _ip,
    ),
    "phone": Detector(
        "PHONE",
        r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
        r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?!\w)",
        _whole(_phone),
    ),
}
"""The kinds made of digits: found near digits only. Order matters where they overlap: the
first alternative that matches at a position wins."""

_NUMBERS = re.compile(
    # One leading character class, so ``re`` skips to the next digit in C (alternatives would
    # be tried at every position: 25 times slower on prose).
    r"[0-9](?<![0-9][0-9])(?:(?<=[A-Za-z+(][0-9])[0-9]*|[0-9]*(?=[-.:]| [0-9])|[0-9]{7,})"
)
"""Runs of digits that may be part of a numbered finding: after a letter, ``+`` or ``(``,
before a separator, or long. Prose's other numbers ("in 2024 the") are skipped in C."""
_HEX_BEFORE = re.compile(r"[0-9A-Fa-f]{1,4}\Z")


class DetectorSet:
    """The built-in kinds (found near their anchors) and custom patterns (scanned everywhere);
    :meth:`find` yields confirmed spans, which may overlap (:class:`~.redactor.Redactor` resolves).

    Speed: a regular expression tried at every position of a text costs about 0.1 µs per
    character and kind in CPython's ``re``. So each built-in kind is looked for only where it can
    be: emails at an ``@`` (``str.find``), secrets at their literal prefixes (``str.find``), the
    numbered kinds tried with an anchored ``match`` where a run of digits begins (or just before:
    ``+``, ``(``, an IBAN's country, a NIE's letter, an IPv6 group's hex letters), and not inside
    a finding already made. Prose costs a few scans in C.
    """

    def __init__(self, kinds: Sequence[Kind] = KINDS, custom: Sequence[Detector] = ()) -> None:
        self.kinds = frozenset(kinds)
        self._numbered = {k: (re.compile(d.pattern), d) for k, d in NUMBERED.items() if k in self.kinds}
        self._custom = [(re.compile(d.pattern), d) for d in custom]

    def find(self, text: str) -> Iterator[Span]:
        if "email" in self.kinds and "@" in text:
            yield from _emails(text)
        if "secret" in self.kinds:
            yield from _secrets(text)
        if self._numbered:
            yield from self._find_numbered(text)
        for pattern, detector in self._custom:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    yield Span(match.start(), match.end(), detector.label)

    def _find_numbered(self, text: str) -> Iterator[Span]:
        covered = 0
        for run in _NUMBERS.finditer(text):
            if run.start() < covered:
                continue
            for start, kinds in _candidates(text, run.start(), run.end()):
                span = self._numbered_at(text, start, kinds)
                if span is not None:
                    covered = span.end
                    yield span
                    break

    def _numbered_at(self, text: str, start: int, kinds: tuple[Kind, ...]) -> Span | None:
        for kind in kinds:
            found = self._numbered.get(kind)
            if found is None:
                continue
            pattern, detector = found
            match = pattern.match(text, start)
            if match is None:
                continue
            length = detector.check(match.group()) if detector.check is not None else len(match.group())
            if length is not None:
                return Span(start, start + length, detector.label)
        return None


def _candidates(text: str, start: int, end: int) -> Iterator[tuple[int, tuple[Kind, ...]]]:
    """Where a numbered finding around the digits ``text[start:end]`` may begin, and which kinds
    it can be, judged by the characters around them (a number followed by a space and a letter
    is none of them: most numbers in prose cost this look only)."""
    before = text[start - 1] if start else ""
    if start >= 2 and text[start - 2 : start].isalpha() and text[start - 2 : start].isupper():
        yield start - 2, ("iban",)
    if before in ("+", "("):
        yield start - 1, ("phone",)
    elif before in ("X", "Y", "Z"):
        yield start - 1, ("es_id",)
    elif before and before in "abcdefABCDEF":
        hex_run = _HEX_BEFORE.search(text, max(0, start - 4), start)
        if hex_run is not None:
            yield hex_run.start(), ("ip",)  # an IPv6 group such as fe80
    after = text[end] if end < len(text) else ""
    kinds: tuple[Kind, ...] = _FOLLOWED_BY.get(after, ())
    if after == " " and not text[end + 1 : end + 2].isdigit():
        kinds = ()
    if end - start >= 8:
        kinds += ("card", "es_id")
    if kinds:
        yield start, kinds


_FOLLOWED_BY: dict[str, tuple[Kind, ...]] = {
    "-": ("ssn", "phone", "card"),
    ".": ("ip", "phone"),
    ":": ("ip",),
    " ": ("card",),
}


def _emails(text: str) -> Iterator[Span]:
    at = text.find("@")
    while at >= 0:
        domain = EMAIL_DOMAIN.match(text, at)
        local = _LOCAL_PART.search(text, max(0, at - 64), at) if domain is not None else None
        if domain is not None and local is not None:
            yield Span(local.start(), domain.end(), "EMAIL")
        at = text.find("@", at + 1)


def _secrets(text: str) -> Iterator[Span]:
    for prefix in SECRET_PREFIXES:
        at = text.find(prefix)
        while at >= 0:
            match = SECRET.match(text, at) if at == 0 or not text[at - 1].isalnum() else None
            if match is not None:
                yield Span(at, match.end(), "SECRET")
            at = text.find(prefix, at + 1)
