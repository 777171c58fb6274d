import pytest

from llmrelay.wire.retry_after import parse_retry_after, parse_should_retry

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": " 3 "}, 3.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:30 GMT"}, 10.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:00 GMT"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "-5"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "999999999"}, None),
        ({"Retry-After": "4"}, 4.0),
        ({" RETRY-AFTER-MS ": "500"}, 0.5),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"x-should-retry": "true"}, True),
        ({"x-should-retry": "false"}, False),
        ({"X-Should-Retry": " True "}, True),
        ({"x-should-retry": "FALSE"}, False),
        ({"x-should-retry": "1"}, None),
        ({"x-should-retry": ""}, None),
    ],
)
def test_parse_should_retry(headers: dict[str, str], expected: bool | None) -> None:
    assert parse_should_retry(headers) is expected
