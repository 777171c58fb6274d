"""The detectors: each kind found, look-alikes that fail their checksum left alone, placeholders
that round-trip for any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.pii.detectors import Detector, DetectorSet, iban, luhn
from llmrelay.pii.redactor import Redactor, Vault

MASK = Redactor(DetectorSet())


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail john.doe+tag@mail.example.co.uk now", "mail [EMAIL] now"),
        ("not an email: a@b, @home, x@y.z1", "not an email: a@b, @home, x@y.z1"),
        ("call +44 20 7946 0958 or (415) 555-2671 or 415.555.2671", "call [PHONE] or [PHONE] or [PHONE]"),
        ("card 4111 1111 1111 1111 and 5500-0000-0000-0004", "card [CARD] and [CARD]"),
        ("order 4111 1111 1111 1112 and 1234567890123", "order 4111 1111 1111 1112 and 1234567890123"),
        ("iban DE89 3704 0044 0532 0130 00 AND GB82WEST12345698765432", "iban [IBAN] AND [IBAN]"),
        ("not iban DE88 3704 0044 0532 0130 00", "not iban DE88 3704 0044 0532 0130 00"),
        (
            "ssn 123-45-6789, not 000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567",
            "ssn [SSN], not 000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567",
        ),
        ("dni 12345678Z nie X1234567L, not 12345678A", "dni [ES_ID] nie [ES_ID], not 12345678A"),
        ("hosts 192.168.1.20, 2001:db8::1 and fe80::1ff:fe23:4567:890a", "hosts [IP], [IP] and [IP]"),
        ("at 12:30:45 on 2024-01-15, v1.2.3, 256.1.1.1", "at 12:30:45 on 2024-01-15, v1.2.3, 256.1.1.1"),
        ("keys sk-proj-abcdefghijklmnop1234, AKIAIOSFODNN7EXAMPLE", "keys [SECRET], [SECRET]"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "Authorization: [SECRET]"),
        ("plain prose in 2024 with 3 numbers and 10 more", "plain prose in 2024 with 3 numbers and 10 more"),
    ],
)
def test_each_kind_is_found_and_look_alikes_are_not(text: str, masked: str) -> None:
    assert MASK.mask(text) == masked


def test_checksums() -> None:
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert iban("DE89370400440532013000") == 22 and iban("DE89370400440532013001") is None
    assert iban("NL91 ABNA 0417 1643 00 and more") == len("NL91 ABNA 0417 1643 00")


def test_chosen_kinds_and_custom_patterns() -> None:
    only_email = Redactor(DetectorSet(["email"], [Detector("EMPLOYEE_ID", r"\bE\d{6}\b")]))
    text = "a@example.com 4111 1111 1111 1111 E123456"
    assert only_email.mask(text) == "[EMAIL] 4111 1111 1111 1111 [EMPLOYEE_ID]"


def test_the_same_value_gets_the_same_placeholder_and_unknown_ones_stay() -> None:
    vault = Vault(MASK)
    redacted = vault.redact("a@example.com wrote to b@example.com, cc a@example.com")
    assert redacted == "<EMAIL_1> wrote to <EMAIL_2>, cc <EMAIL_1>"
    assert vault.restore("<EMAIL_2> and <EMAIL_9> <email_1>") == "b@example.com and <EMAIL_9> <email_1>"


PII = st.sampled_from(
    [
        "a.b@example.com",
        "+1 415 555 2671",
        "4111 1111 1111 1111",
        "DE89 3704 0044 0532 0130 00",
        "123-45-6789",
    ]
)
TEXT = st.lists(st.one_of(PII, st.text(alphabet="abc <>_ XYZ019@.-:\n", max_size=12)), max_size=12).map(
    " ".join
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_placeholders_round_trip_and_leave_nothing_behind(text: str) -> None:
    vault = Vault(MASK)
    redacted = vault.redact(text)
    assert vault.restore(redacted) == text
    for value in ("a.b@example.com", "4111 1111 1111 1111", "123-45-6789"):
        assert value not in redacted
