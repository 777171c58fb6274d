"""Cost of PII redaction on a prompt: placeholders in (``Vault.redact``) and values back out.

Run: ``.venv/bin/python bench/pii_redaction.py``. Three 2 KB prompts: a support request with the
usual PII (an email, a phone number, a card, an IBAN, dates, amounts, an order number), plain
prose with numbers, and a worst case that is nothing but PII and numbers. Prints p50 and p99 in
µs, with a calibration loop (``sum(range(1000))``, about 8 µs on an idle modern core) to judge a
loaded machine by.
"""

from __future__ import annotations

import statistics
import time
import timeit

from llmrelay.pii.detectors import DetectorSet
from llmrelay.pii.redactor import Redactor, Vault

SUPPORT = (
    "Hello team,\n\nI am writing about my order 1029384756 placed on 2024-03-14 at 10:42. The parcel was"
    " supposed to arrive within 3 to 5 working days, but after 12 days nothing has come, and the tracking"
    " page has said 'in transit' since March 16. I paid 249.99 EUR with my card 4111 1111 1111 1111 and"
    " I would like either the parcel or a refund to my account DE89 3704 0044 0532 0130 00. You can reach"
    " me at jane.roe@example.org or on +49 30 1234 5678 between 9 and 17 on weekdays. My customer number"
    " is 55-2231. I have attached the invoice (2 pages) and a photo of the label. Last time, in 2023, a"
    " similar problem took 4 weeks to resolve and I had to call 6 times, which I would rather avoid.\n"
    "Please also update my delivery address: 221B Baker Street, London NW1 6XE, flat 3, second floor.\n"
    "Summarise the case for the agent in three bullet points, keep it under 80 words, and suggest the"
    " next step. Mention the amounts and dates exactly as given; do not invent any reference numbers."
    " If the refund is the better option, say how long it usually takes (5 to 10 days is what the site"
    " says) and what the customer should do if it takes longer than 14 days.\n"
)
PROSE = (
    "The committee met 3 times in 2023 and 4 times in 2024. Attendance rose from 12 to 19 members, and"
    " the budget grew by 7.5% to cover 2 new projects. "
)
DENSE = (
    "a@example.com +1 415 555 2671 4111 1111 1111 1111 DE89 3704 0044 0532 0130 00 123-45-6789 "
    "192.168.1.20 2001:db8::1 12345678Z 2024-01-15 10:30 v1.2.3 1234567890123 "
)


def two_kb(text: str) -> str:
    return (text * (2048 // len(text) + 1))[:2048]


def main() -> None:
    redactor = Redactor(DetectorSet())
    calibration = min(timeit.repeat("sum(range(1000))", number=1000, repeat=5)) / 1000 * 1e6
    print(f"calibration sum(range(1000)): {calibration:.1f} µs")
    for name, text in (
        ("support request", two_kb(SUPPORT)),
        ("prose", two_kb(PROSE)),
        ("all PII", two_kb(DENSE)),
    ):
        times = []
        for _ in range(3000):
            start = time.perf_counter_ns()
            vault = Vault(redactor)
            redacted = vault.redact(text)
            vault.restore(redacted)
            times.append(time.perf_counter_ns() - start)
        times.sort()
        found = len(redactor.spans(text))
        p50, p99 = statistics.median(times) / 1000, times[int(len(times) * 0.99)] / 1000
        print(f"{name:16} {len(text)} chars, {found:2} findings: p50 {p50:6.1f} µs  p99 {p99:6.1f} µs")


if __name__ == "__main__":
    main()
