"""The semantic cache's verifier: cheap checks that reject a near neighbour answering another question.

Embeddings place "How far is Paris from Lyon in km?" next to the same question in miles, "Is X
safe?" next to "Is X not safe?", and "Why ..." next to "When ...": close in meaning, different
answers. A candidate above the similarity threshold is served only if every check passes. Each
check is a pure function ``(cached, asked) -> reason | None`` over the two final user messages;
the reason names what differs (logged at debug, counted by the evaluation).

Checks (``CHECKS``): ``numbers`` (digits and number words), ``dates`` (months, weekdays, relative
days), ``units`` (measures and currencies), ``entities`` (capitalised names and acronyms),
``negation`` (an odd number of negators on one side only), ``antonyms`` (a word on one side, its
opposite on the other), ``question`` (a different specific question word: why / when / where /
who / how many ...), ``roles`` (the same words in swapped roles: from X to Y / from Y to X).
The set is configurable per alias, and a hook (``module:function``) may add one of the operator's
own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

Check = Callable[[str, str], str | None]


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*|\d+(?:[.,]\d+)*")
_NUMBER_WORDS = _set(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    " sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred"
    " thousand million billion trillion first second third fourth fifth half quarter dozen"
)
_DATES = _set(
    "january february march april may june july august september october november december jan feb"
    " mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday"
    " sunday today tomorrow yesterday tonight weekend morning evening night spring summer autumn fall"
    " winter"
)
_UNITS = _set(
    "km kilometer kilometers kilometre kilometres mile miles m meter meters metre metres cm mm inch"
    " inches foot feet ft yard yards kg kilogram kilograms g gram grams lb lbs pound pounds ounce"
    " ounces oz ton tons tonne tonnes l liter liters litre litres ml gallon gallons celsius fahrenheit"
    " kelvin degree degrees c f k percent % mph kph kmh hour hours minute minutes second seconds day"
    " days week weeks month months year years decade decades century centuries gb mb kb tb byte bytes"
    " bit bits ghz mhz hz w kw kwh watt watts volt volts amp amps dollar dollars usd $ euro euros eur €"
    " pound sterling gbp £ yen jpy ¥ rupee rupees inr yuan rmb bitcoin btc calorie calories"
)
_NEGATORS = _set(
    "not no never none nobody nothing neither nor without cannot cant can't dont don't doesnt doesn't"
    " didnt didn't isnt isn't arent aren't wasnt wasn't werent weren't wont won't wouldnt wouldn't"
    " shouldnt shouldn't couldnt couldn't havent haven't hasnt hasn't hadnt hadn't"
)
_ANTONYMS = (
    ("good", "bad"),
    ("best", "worst"),
    ("better", "worse"),
    ("high", "low"),
    ("higher", "lower"),
    ("highest", "lowest"),
    ("big", "small"),
    ("bigger", "smaller"),
    ("biggest", "smallest"),
    ("large", "small"),
    ("largest", "smallest"),
    ("long", "short"),
    ("longer", "shorter"),
    ("fast", "slow"),
    ("faster", "slower"),
    ("fastest", "slowest"),
    ("hot", "cold"),
    ("warm", "cold"),
    ("increase", "decrease"),
    ("rise", "fall"),
    ("buy", "sell"),
    ("before", "after"),
    ("advantages", "disadvantages"),
    ("pros", "cons"),
    ("true", "false"),
    ("right", "wrong"),
    ("cheap", "expensive"),
    ("cheapest", "expensive"),
    ("easy", "hard"),
    ("easy", "difficult"),
    ("easiest", "hardest"),
    ("start", "stop"),
    ("begin", "end"),
    ("open", "close"),
    ("win", "lose"),
    ("gain", "lose"),
    ("love", "hate"),
    ("men", "women"),
    ("man", "woman"),
    ("male", "female"),
    ("boy", "girl"),
    ("boys", "girls"),
    ("husband", "wife"),
    ("positive", "negative"),
    ("safe", "dangerous"),
    ("legal", "illegal"),
    ("possible", "impossible"),
    ("rich", "poor"),
    ("young", "old"),
    ("new", "old"),
    ("old", "new"),
    ("more", "less"),
    ("most", "least"),
    ("maximum", "minimum"),
    ("max", "min"),
    ("add", "remove"),
    ("upload", "download"),
    ("import", "export"),
    ("input", "output"),
    ("north", "south"),
    ("east", "west"),
    ("up", "down"),
    ("inside", "outside"),
    ("above", "below"),
    ("first", "last"),
    ("early", "late"),
    ("happy", "sad"),
    ("strong", "weak"),
    ("heavy", "light"),
    ("healthy", "unhealthy"),
    ("weight", "height"),
    ("gain", "loss"),
    ("like", "dislike"),
    ("agree", "disagree"),
    ("with", "without"),
    ("online", "offline"),
    ("public", "private"),
    ("can", "should"),
    ("give", "receive"),
    ("given", "received"),
    ("gave", "received"),
    ("send", "receive"),
    ("sent", "received"),
    ("similar", "different"),
    ("similar", "differ"),
    ("same", "different"),
)
_RELATIONS = _set("from to into onto about for than against versus vs over by toward towards")
_SKIPPED = _set("a an the my your our their his her its this that these those some any")
_OPPOSITE: dict[str, frozenset[str]] = {}
for _a, _b in _ANTONYMS:
    _OPPOSITE[_a] = _OPPOSITE.get(_a, frozenset()) | {_b}
    _OPPOSITE[_b] = _OPPOSITE.get(_b, frozenset()) | {_a}
_COMMON = _set(
    "i a an the what why how when where who whom whose which is are was were do does did can could"
    " should would will shall may might must have has had be been being if in on at to for of and or"
    " but my your our their his her its it this that these those there here please tell explain"
    " describe give list name any some all"
)
_SPECIFIC_QUESTIONS = (
    "how many",
    "how much",
    "how long",
    "how old",
    "how often",
    "how far",
    "why",
    "when",
    "where",
    "who",
    "whom",
    "whose",
    "which",
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _lower(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _words(text)]


def _symbols(text: str) -> set[str]:
    return {s for s in ("$", "€", "£", "¥", "%") if s in text}


def numbers(cached: str, asked: str) -> str | None:
    def of(text: str) -> set[str]:
        return {w.replace(",", "") for w in _lower(text) if w[0].isdigit() or w in _NUMBER_WORDS}

    return "numbers differ" if of(cached) != of(asked) else None


def dates(cached: str, asked: str) -> str | None:
    def of(text: str) -> set[str]:
        return {w for w in _lower(text) if w in _DATES}

    return "dates differ" if of(cached) != of(asked) else None


def units(cached: str, asked: str) -> str | None:
    def of(text: str) -> set[str]:
        words = {w.rstrip("s") if len(w) > 3 else w for w in _lower(text) if w in _UNITS}
        return words | _symbols(text)

    return "units differ" if of(cached) != of(asked) else None


def entities(cached: str, asked: str) -> str | None:
    def of(text: str) -> set[str]:
        found = set()
        for word in _words(text):
            lower = word.lower().replace("’", "'")
            base = lower.split("'")[0]
            capitalised = word[0].isupper() or (len(word) > 1 and word.isupper())
            if capitalised and base not in _COMMON and lower not in _NEGATORS:
                found.add(base)
        return found

    return "named entities differ" if of(cached) != of(asked) else None


def negation(cached: str, asked: str) -> str | None:
    def odd(text: str) -> bool:
        return sum(w in _NEGATORS or w.endswith("n't") for w in _lower(text)) % 2 == 1

    return "negation differs" if odd(cached) != odd(asked) else None


def antonyms(cached: str, asked: str) -> str | None:
    one, two = set(_lower(cached)), set(_lower(asked))
    for word in one - two:
        if _OPPOSITE.get(word, frozenset()) & (two - one):
            return f"antonyms ({word})"
    return None


def question(cached: str, asked: str) -> str | None:
    def of(text: str) -> set[str]:
        joined = " " + " ".join(_lower(text)) + " "
        return {q for q in _SPECIFIC_QUESTIONS if f" {q} " in joined}

    one, two = of(cached), of(asked)
    return "question word differs" if one and two and one != two else None


def roles(cached: str, asked: str) -> str | None:
    """The same words in swapped roles: "from Canada to India" vs "from India to Canada",
    "convert benzene into toluene" vs "convert toluene into benzene": a relation word points at
    one word on one side and at another on the other side, and both sides hold both words."""

    def of(text: str) -> dict[str, str]:
        words, found = _lower(text), dict[str, str]()
        for i, word in enumerate(words):
            if word in _RELATIONS:
                j = i + 1
                while j < len(words) and words[j] in _SKIPPED:
                    j += 1
                if j < len(words) and words[j] not in _COMMON:
                    found.setdefault(word, words[j])
        return found

    one, two = of(cached), of(asked)
    shared = set(_lower(cached)) & set(_lower(asked))
    for relation, word in one.items():
        other = two.get(relation)
        if other is not None and other != word and word in shared and other in shared:
            return f"roles differ ({relation} {word} / {relation} {other})"
    return None


CHECKS: dict[str, Check] = {
    "numbers": numbers,
    "dates": dates,
    "units": units,
    "entities": entities,
    "negation": negation,
    "antonyms": antonyms,
    "question": question,
    "roles": roles,
}


class Verifier:
    """The checks an alias runs, in order; the first that objects rejects the candidate."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self._checks = tuple(checks)

    def __call__(self, cached: str, asked: str) -> str | None:
        for check in self._checks:
            reason = check(cached, asked)
            if reason is not None:
                return reason
        return None
