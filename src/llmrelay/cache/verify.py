"""The semantic cache's verifier: cheap checks that reject a near neighbour answering another question.

Embeddings place "How far is Paris from Lyon in km?" next to the same question in miles, "Is X
safe?" next to "Is X not safe?", and "Why ..." next to "When ...": close in meaning, different
answers. A candidate above the similarity threshold is served only if every check passes. Each
check is a pure function ``(cached, asked) -> reason | None`` over the two final user messages;
the reason names what differs (logged at debug, counted by the evaluation).

Checks (``CHECKS``): ``numbers`` (digits and number words; not ``one``, mostly a pronoun in
questions), ``dates`` (months, weekdays, relative days), ``units`` (measures and currencies),
``entities`` (a capitalised name or acronym on one side that the other does not mention in any case
or inflection; a sentence's opening capital is no name), ``negation`` (an odd number of negators on
one side only; "why or why not" negates nothing), ``antonyms`` (a word on one side, its opposite on
the other), ``question`` (the leading question asks for another kind of answer: why / when / where /
who / how many ..., or a yes/no question against a why or when), ``roles`` (the same words in
swapped roles: from X to Y / from Y to X), ``coordination`` (both of "X and Y" on one side, only
one of them on the other).
The set is configurable per alias, and a hook (``module:function``) may add one of the operator's
own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

Check = Callable[[str, str], str | None]


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_SENTENCES = re.compile(r"[.?!:;]+\s+|\n")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*|\d+(?:[.,]\d+)*")
_NUMBER_WORDS = _set(
    "zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    " sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred"
    " thousand million billion trillion first second third fourth fifth half quarter dozen teens twenties"
    " thirties forties fifties sixties seventies eighties nineties"
)
"""Not ``one``: in questions it is mostly the pronoun ("How can one learn ...?"); "one" against
another number still differs, since the other side's number is missing here."""
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
_QUESTION_WORDS = _set("what which who whom whose when where why how")
_SPECIFIC = _set("why when where who whom whose")
_HOW_SPECIFIC = _set("many much long old often far")
_AUXILIARIES = _set("is are was were do does did can could should would will has have had")
_EITHER = frozenset({"how", "yes/no", "where", "who"})


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
    """A name on one side that the other does not mention, in any case or inflection ("Snapchat"
    / "snapchats", "India" / "Indians" match; "Obama" / "Trump" do not). A capitalised word that
    opens a sentence is no name by its capital alone."""

    def names(text: str) -> set[str]:
        found = set()
        for sentence in _SENTENCES.split(text):
            found |= names_in(sentence)
        return found

    def names_in(sentence: str) -> set[str]:
        found = set()
        opening = True
        for word in _words(sentence):
            lower = word.lower().replace("’", "'")
            base = lower.split("'")[0]
            capitalised = (word[0].isupper() and not opening) or (len(word) > 1 and word.isupper())
            if capitalised and base not in _COMMON and lower not in _NEGATORS:
                found.add(base)
            opening = False
        return found

    def mentions(text: str) -> set[str]:
        return {w.split("'")[0] for w in _lower(text)}

    for one, other in ((cached, asked), (asked, cached)):
        words = mentions(other)
        for name in names(one):
            if not any(_related(name, word) for word in words):
                return f"named entities differ ({name})"
    return None


def _related(name: str, word: str) -> bool:
    """The same word, or one inflects the other (a prefix of at least 4 letters: "india" / "indians")."""
    if name == word:
        return True
    short, long = sorted((name, word), key=len)
    return len(short) >= 4 and long.startswith(short)


def negation(cached: str, asked: str) -> str | None:
    """``why or why not`` and ``... or not`` ask both ways: their ``not`` negates nothing."""

    def odd(text: str) -> bool:
        words = _lower(text)
        negators = sum(
            (w in _NEGATORS or w.endswith("n't")) and not (w == "not" and i and words[i - 1] in ("or", "why"))
            for i, w in enumerate(words)
        )
        return negators % 2 == 1

    return "negation differs" if odd(cached) != odd(asked) else None


def antonyms(cached: str, asked: str) -> str | None:
    one, two = set(_lower(cached)), set(_lower(asked))
    for word in one - two:
        if _OPPOSITE.get(word, frozenset()) & (two - one):
            return f"antonyms ({word})"
    return None


def question(cached: str, asked: str) -> str | None:
    """The question each side leads with (its first question word) asks for another kind of
    answer: why / when / where / who / how many ...; ``what``, ``which`` and a plain ``how`` ask for
    anything, and a later "... and why?" or "when" inside a clause is not the question asked."""

    def leading(text: str) -> str | None:
        words = _lower(text)
        if words and words[0] in _AUXILIARIES:
            return "yes/no"
        for i, word in enumerate(words):
            if word in _QUESTION_WORDS:
                if word == "how" and i + 1 < len(words) and words[i + 1] in _HOW_SPECIFIC:
                    return "how " + words[i + 1]
                if word == "how" or word in _SPECIFIC:
                    return word
                return None
        return None

    one, two = leading(cached), leading(asked)
    if one is None or two is None or one == two or _EITHER.issuperset((one, two)):
        return None
    return f"question word differs ({one} / {two})"


def roles(cached: str, asked: str) -> str | None:
    """The same words in swapped roles: "from Canada to India" vs "from India to Canada",
    "convert benzene into toluene" vs "convert toluene into benzene": the n-th use of a relation
    word points at one word on one side and at another on the other side, and both sides hold
    both words."""

    def of(text: str) -> dict[tuple[str, int], str]:
        words, found, seen = _lower(text), dict[tuple[str, int], str](), dict[str, int]()
        for i, word in enumerate(words):
            if word in _RELATIONS:
                j = i + 1
                while j < len(words) and words[j] in _SKIPPED:
                    j += 1
                if j < len(words) and words[j] not in _COMMON:
                    n = seen[word] = seen.get(word, 0) + 1
                    found[(word, n)] = words[j]
        return found

    one, two = of(cached), of(asked)
    shared = set(_lower(cached)) & set(_lower(asked))
    for (relation, n), word in one.items():
        other = two.get((relation, n))
        if other is not None and other != word and word in shared and other in shared:
            return f"roles differ ({relation} {word} / {relation} {other})"
    return None


def coordination(cached: str, asked: str) -> str | None:
    """One side asks about both of "X and Y" (or "X or Y"), the other about one of them only:
    "pros and cons" vs "pros", "men and women" vs "women", "best and worst" vs "worst"."""

    def pairs(text: str) -> list[tuple[str, str]]:
        found = []
        for sentence in _SENTENCES.split(text):
            words = _lower(sentence)
            found += [
                (words[i - 1], words[i + 1])
                for i in range(1, len(words) - 1)
                if words[i] in ("and", "or")
                and words[i - 1] not in _COMMON
                and words[i + 1] not in _COMMON
                and not words[i - 1][0].isdigit()
                and not words[i + 1][0].isdigit()
            ]
        return found

    for one, other in ((cached, asked), (asked, cached)):
        words = set(_lower(other))
        for x, y in pairs(one):
            has_x, has_y = (any(_related(w, word) for word in words) for w in (x, y))
            if has_x != has_y:
                return f"coordination differs ({x} / {y})"
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
    "coordination": coordination,
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
