"""Which numbers in a sentence are candidate counts of people: every number read with its qualifier
("at least", "plus de", "between 10 and 15"), less those that are not counts (ages, years, dates,
money, measures, scores, phone numbers, ordinals, "one of the deadliest") and less the subsets of a
figure just given ("including three children", "dont deux graves")."""

from __future__ import annotations

from .dates import _MONTHS
from .numbers import _NUMBER_START, _digits, _is_year, _Num, _read_number, _Tok
from .triggers import _PEOPLE, _TRIGGERS, _ends_with, _trigger_at

# After a number these make it a measure, not a count of people.
_NOT_PEOPLE_AFTER = {
    "%", "percent", "pct", "euro", "euros", "dollar", "dollars", "pound", "pounds", "francs", "yuan", "rupees", "€", "$", "£",
    "points", "pts", "point", "km", "kilometres", "kilometers", "kilomètres", "miles", "mile", "metres", "meters", "mètres",
    "m", "kg", "tonnes", "tons", "hectares", "ha", "degrees", "degrés", "°", "mph", "hours", "hour", "heures", "heure",
    "h", "minutes", "minute", "seconds", "secondes", "days", "day", "jours", "jour", "weeks", "week", "semaines",
    "months", "month", "mois", "years", "year", "ans", "an", "années", "année", "am", "pm", "a.m", "p.m", "gmt",
    "times", "fois", "goals", "buts", "votes", "voix", "seats", "sièges", "cases", "cas",
}  # fmt: skip
_CURRENCY_BEFORE = {"$", "€", "£", "¥", "us$", "usd", "eur", "gbp", "chf"}
_AGE_BEFORE = {"aged", "age", "ages", "âgé", "âgée", "âgés", "âgées"}
_SUBSET_BEFORE = ("including", "among them", "among whom", "of whom", "dont", "parmi eux", "parmi elles", "parmi lesquels",
                  "parmi lesquelles", "notamment", "among those", "mostly", "mainly")  # fmt: skip
_PRONOUN_ONE = {"no", "the", "this", "that", "each", "every", "any", "which", "anyone", "someone", "l'"}

_QUALIFIERS = [  # longest first; checked on the tokens just before the number
    ("no fewer than", "at least"), ("no less than", "at least"), ("at least", "at least"), ("au moins", "at least"),
    ("pas moins de", "at least"), ("pas moins d'", "at least"), ("au minimum", "at least"), ("a minimum of", "at least"),
    ("more than", "more than"), ("upwards of", "more than"), ("in excess of", "more than"), ("plus de", "more than"),
    ("plus d'", "more than"), ("over", "more than"), ("past", "more than"), ("above", "more than"), ("tops", "more than"),
    ("topped", "more than"), ("passed", "more than"), ("exceeded", "more than"), ("exceeds", "more than"),
    ("surpassed", "more than"), ("dépasse les", "more than"), ("dépassé les", "more than"), ("dépasse", "more than"),
    ("an estimated", "about"), ("estimated", "about"), ("about", "about"), ("around", "about"), ("some", "about"),
    ("roughly", "about"), ("approximately", "about"), ("environ", "about"), ("quelque", "about"), ("quelques", "about"),
    ("nearly", "nearly"), ("almost", "nearly"), ("close to", "nearly"), ("près de", "nearly"), ("presque", "nearly"),
    ("up to", "up to"), ("as many as", "up to"), ("jusqu'à", "up to"),
    ("fewer than", "fewer than"), ("less than", "fewer than"), ("under", "fewer than"), ("moins de", "fewer than"),
    ("moins d'", "fewer than"),
]  # fmt: skip
_SKIPPABLE = {"now", "already", "désormais", "déjà", "the", "les", "a", "today", "officially", "ainsi"}


def _excluded(toks: list[_Tok], num: _Num, text: str) -> bool:
    """Numbers that are not counts of people: ages, years, dates, money, measures, scores, phones, ordinals."""
    n = len(toks)
    first, last = toks[num.start], toks[num.end - 1]
    prev = toks[num.start - 1] if num.start > 0 else None
    nxt = toks[num.end] if num.end < n else None
    if first.text[0].isdigit():
        if first.text.startswith("0") and len(first.text) > 1:
            return True  # 0800, 01 42: phone numbers, not counts
        if prev is not None and first.glued_left and (prev.text[-1].isalnum() or prev.text in "-/:.$€£¥"):
            return True  # A38, Mum-of-3, 3-1, 12:30, $50
        if last.glued_right and nxt is not None and nxt.start == last.end and nxt.text not in ",.;:!?)»\"'":
            return True  # 12-year-old, 90th, 3e, 5-0, 12h30
    if prev is not None and prev.low in _CURRENCY_BEFORE:
        return True
    shouting = nxt is not None and nxt.text.isupper() and nxt.text.isalpha()
    if prev is not None and prev.text.isupper() and len(prev.text) <= 4 and prev.text.isalpha() and not shouting:
        # "RN 12", "CAC 40"; a source right before a number ("HTS 3") does not occur in prose
        return True
    if nxt is not None:
        after = nxt.low
        if after in ("of", "de", "d'") and num.end + 1 < n and toks[num.end + 1].low in _NOT_PEOPLE_AFTER | {"euros", "dollars"}:
            return True  # 4 millions d'euros
        if after in _NOT_PEOPLE_AFTER or after in _MONTHS:
            return True
        if after == "per" and num.end + 1 < n and toks[num.end + 1].low == "cent":
            return True
        if after == "pour" and num.end + 1 < n and toks[num.end + 1].low == "cent":
            return True
        if after in ("years", "ans") or (after == "year" and num.end + 1 < n):
            return True
    if prev is not None and (prev.low in _MONTHS or prev.low in ("le", "the", "on") and nxt is not None and nxt.low in _MONTHS):
        return True
    if _is_year(first, num.value) and num.end == num.start + 1:
        if not (nxt is not None and _trigger_at(toks, num.end) is not None) and not (nxt is not None and nxt.low in _PEOPLE):
            return True
    # ages: "aged 15, 16 and 17", "âgés de 15 à 17 ans", "Striker, 23, bags"
    j = num.start - 1
    while (
        j >= 0
        and j >= num.start - 8
        and (toks[j].low in {",", "and", "et", "à", "to", "de", "d'", "between", "entre"} or _digits(toks[j]) is not None)
    ):
        j -= 1
    if j >= 0 and toks[j].low in _AGE_BEFORE:
        return True
    if (
        prev is not None
        and prev.text == ","
        and nxt is not None
        and nxt.text == ","
        and num.end == num.start + 1
        and first.text.isdigit()
    ):
        if num.start >= 2 and toks[num.start - 2].text[:1].isupper():
            return True  # "Striker, 23, bags": an age in apposition
    # phone numbers and lists of bare numbers: "555 0123", "67 89"
    for k in (num.start - 1, num.end):
        if 0 <= k < n and toks[k].text[0].isdigit() and (k == num.end and not first.text[0].isalpha()):
            if toks[k].start - last.end <= 1 and text[last.end : toks[k].start] in (" ", "\u00a0"):
                return True
    if num.one_word is not None:
        if nxt is None:
            return True
        if nxt.low in ("of", "des", "d'", "de") or (prev is not None and prev.low in _PRONOUN_ONE):
            return True  # "one of the deadliest", "l'une des"
        if num.one_word in ("un", "une") and not (_trigger_at(toks, num.end) is not None or nxt.low == "personne"):
            return True
    return False


_TOKEN_SPLIT = {
    "plus d'": ["plus", "d'"],
    "pas moins d'": ["pas", "moins", "d'"],
    "moins d'": ["moins", "d'"],
    "jusqu'à": ["jusqu'", "à"],
}
_QUALIFIER_PHRASES: dict[str, list[tuple[tuple[str, ...], str]]] = {}  # by last word
for _words, _norm in _QUALIFIERS:
    _phrase = tuple(_TOKEN_SPLIT.get(_words, _words.split()))
    _QUALIFIER_PHRASES.setdefault(_phrase[-1], []).append((_phrase, _norm))


def _qualifier_before(toks: list[_Tok], i: int) -> tuple[str | None, int]:
    """The qualifier ending at token ``i`` (exclusive) and the token where it starts."""
    j = i
    while j > 0 and toks[j - 1].low in _SKIPPABLE and j > i - 2:
        j -= 1
    for end in (i, j):
        for phrase, norm in _QUALIFIER_PHRASES.get(toks[end - 1].low if end else "", ()):
            if _ends_with(toks, end, phrase):
                return norm, end - len(phrase)
    return None, i


def _mentions(toks: list[_Tok], text: str) -> list[_Num]:
    nums: list[_Num] = []
    i = 0
    while i < len(toks):
        if not (toks[i].text[0].isdigit() or toks[i].low in _NUMBER_START):
            i += 1
            continue
        num = _read_number(toks, i)
        if num is None:
            i += 1
            continue
        # ranges: "between 10 and 15", "10 to 15", "entre 10 et 15", "de 10 à 15", "10-15"
        if num.end + 1 < len(toks) and toks[num.end].low in ("to", "and", "à", "et", "-", "–"):
            other = _read_number(toks, num.end + 1)
            if other is not None and other.value > num.value and num.qualifier is None and other.one_word is None:
                before = toks[num.start - 1].low if num.start else ""
                if toks[num.end].low in ("and", "et") and before not in ("between", "entre"):
                    other = None
                if other is not None:
                    num = _Num(num.start, other.end, num.value, "between", high=other.value)
                    if before in ("between", "entre", "de", "from"):
                        num.start -= 1
        if not _excluded(toks, num, text):
            if num.qualifier is None or num.qualifier == "about":
                qual, qstart = _qualifier_before(toks, num.start)
                if qual is not None:
                    num.qualifier, num.start = qual, qstart
            nums.append(num)
        i = max(num.end, i + 1)
    return nums


def _subset(toks: list[_Tok], num: _Num) -> bool:
    """Whether the number is part of a figure already given: "including three children", "dont deux
    graves", "19 of the injured", "2 of the 4 hikers"."""
    before = " ".join(t.low for t in toks[max(0, num.start - 3) : num.start])
    if any(before == s or before.endswith(" " + s) for s in _SUBSET_BEFORE):
        return True
    after = [t.low for t in toks[num.end : num.end + 3]]
    if after[:2] in (["of", "the"], ["of", "those"], ["des"], ["d'entre"]) or after[:1] == ["des"]:
        k = num.end + (2 if after[:1] == ["of"] else 1)
        if k < len(toks) and (
            toks[k].low in _TRIGGERS
            or _read_number(toks, k) is not None
            or toks[k].low in ("victims", "victimes", "wounded", "injured", "dead")
        ):
            return True
    return after[:2] == ["of", "whom"]
