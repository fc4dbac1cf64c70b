"""Facts that differ: the figures a report gives (who was killed, injured, arrested...), the sources it
names, its places and dates, pulled out by fast rules; and, across a story's variants, where the
figures agree and where they differ.

Pure: text in, records out; no I/O and no clock. English and French. The rules work on tokens: every
number (digits, words, "a dozen", "une vingtaine", "dozens of") is a candidate; ages, years, dates,
money, percentages, times, scores, phone numbers and subsets ("including three children") are dropped;
what a number counts comes from the nearest trigger (a verb or noun: "killed", "morts", "were among
the dead") within its clause, to the right, to the left ("killing 12"), or a toll before it ("the
death toll rose to 15"). ``tests/data/facts_labelled.jsonl`` measures them
(``aggregator.tools.factscore.score_file``).

Conventions, which the labelled file follows:

- ``value`` is an int. Approximate collectives are their number with qualifier "about" ("a dozen" 12,
  "une vingtaine" 20); vague plurals are the least they can mean, with the plural as the qualifier
  ("dozens" 24, "des dizaines" 20, "hundreds"/"des centaines" 200, "thousands"/"des milliers" 2000).
- A range ("between 10 and 15", "de 10 à 15") is its low end with qualifier "between" and ``high`` set.
- Subsets of a figure just given ("including three children", "dont deux graves", "19 of the
  injured") are not figures; "3 of its members were among the dead" is.
- "a"/"an" is not a number; "one" is; French "un"/"une" only before a trigger or "personne"
  ("un mort", "une personne a été tuée"), since French does not tell "a man" from "one man".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .models import Story

__all__ = [
    "Attribution",
    "DateMention",
    "FactGroup",
    "FactValue",
    "Figure",
    "Place",
    "compare",
    "extract_attributions",
    "extract_dates",
    "extract_figures",
    "extract_places",
    "summary_line",
]

CATEGORIES = ("killed", "injured", "missing", "displaced", "arrested", "kidnapped", "evacuated", "rescued")
VAGUE = ("dozens", "hundreds", "thousands")  # qualifiers that stand for the value


@dataclass(frozen=True)
class Figure:
    """One count of people in a text: ``value`` of ``counted`` were ``what``."""

    value: int
    qualifier: str | None  # "at least", "more than", "about", "nearly", "up to", "fewer than", "between", or a VAGUE plural
    what: str  # one of CATEGORIES
    counted: str  # the noun phrase as written after the number ("people", "of its members"; "" for "12 dead")
    text: str  # the matched span, qualifier and number through the counted noun phrase
    start: int
    end: int
    attribution: str | None = None  # the source the same sentence names, nearest first
    high: int | None = None  # the top of a range

    @property
    def label(self) -> str:
        """How the figure reads in a summary: "12", "10–15", "dozens"."""
        if self.qualifier in VAGUE:
            return self.qualifier or ""
        if self.high is not None:
            return f"{self.value}–{self.high}"
        return str(self.value)


@dataclass(frozen=True)
class Attribution:
    """A named source: "according to the Syrian Observatory..." gives ``source`` "Syrian Observatory..."."""

    source: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Place:
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class DateMention:
    text: str
    start: int
    end: int


# ---------------------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"\d{1,3}(?:(?:,|[ \u00a0\u202f])\d{3})+(?![\d,.]\d)"  # 1,284 · 1 284 · 40 000
    r"|\d+(?:[.,]\d+)?"
    r"|\w+(?:[-.]\w+)*['’]?"  # a word keeps an apostrophe after it: French elision (l', d', qu'); \w is 5x faster than [^\W\d_]
    r"|\S",
)
_SENTENCE_END = re.compile(r"[.!?][\"”»]?\s+(?=[\"“«]?[A-ZÀ-ÖØ-Þ0-9])|\n+")


class _Tok(NamedTuple):  # a tuple: articles have thousands of tokens, and a frozen dataclass costs 5x to build
    text: str
    low: str
    start: int
    end: int
    glued_left: bool  # no space before it
    glued_right: bool  # no space after it


def _tokens(text: str) -> list[_Tok]:
    text = text.replace("’", "'")  # same length: spans still index the caller's text
    padded = f" {text} "  # so that the neighbours of the first and last token exist
    make = _Tok._make
    return [
        make((w := m.group(), w.lower(), s, e, not padded[s].isspace(), not padded[e + 1].isspace()))
        for m in _TOKEN.finditer(text)
        for s, e in (m.span(),)
    ]


# ---------------------------------------------------------------------------------------------- numbers

_UNITS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "neuf": 9,
    "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16, "vingt": 20,
    "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "quatre-vingt": 80, "quatre-vingts": 80,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "millions": 10**6, "billion": 10**9,
           "cent": 100, "cents": 100, "mille": 1000, "milliard": 10**9, "milliards": 10**9}  # fmt: skip
_COLLECTIVE = {"dozen": 12, "douzaine": 12, "dizaine": 10, "quinzaine": 15, "vingtaine": 20, "trentaine": 30,
               "quarantaine": 40, "cinquantaine": 50, "soixantaine": 60, "centaine": 100, "millier": 1000}  # fmt: skip
_VAGUE_WORDS = {"dozens": ("dozens", 24), "dizaines": ("dozens", 20), "hundreds": ("hundreds", 200),
                "centaines": ("hundreds", 200), "thousands": ("thousands", 2000), "milliers": ("thousands", 2000)}  # fmt: skip
_MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre",
}  # fmt: skip
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
             "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"}  # fmt: skip
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


_NUMBER_START = {*_UNITS, "a", "un", "une", "des", "plusieurs", "tens", *_VAGUE_WORDS} | {
    w for w in (f"{t}-{u}" for t in ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "vingt",
                                     "trente", "quarante", "cinquante", "soixante", "quatre-vingt")
                for u in ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "un", "deux", "trois", "quatre",
                          "cinq", "six", "sept", "huit", "neuf", "dix", "onze", "douze", "treize", "quatorze", "quinze", "seize",
                          "dix-sept", "dix-huit", "dix-neuf"))
}  # fmt: skip


def _word_value(low: str) -> int | None:
    if low in _UNITS:
        return _UNITS[low]
    if "-" in low:  # twenty-five, vingt-cinq, soixante-dix, quatre-vingt-dix
        low = low.replace("quatre-vingts", "quatre-vingt").replace("quatre-vingt", "qv")
        parts = low.split("-")
        if parts and parts[0] == "qv":
            parts[0] = "quatre-vingt"
        vals = [_UNITS.get(p) for p in parts if p != "et"]
        if vals and all(v is not None for v in vals) and len(vals) == 2:
            tens, unit = vals[0] or 0, vals[1] or 0
            if tens >= 20 and tens % 10 == 0 and unit < 20:
                return tens + unit
    return None


@dataclass
class _Num:
    start: int  # token index of the first token (qualifier excluded)
    end: int  # token index after the number
    value: int
    qualifier: str | None
    high: int | None = None
    one_word: str | None = None  # "one", "un", "une": needs care


def _digits(tok: _Tok) -> float | None:
    t = tok.text
    if not t[0].isdigit():
        return None
    if re.fullmatch(r"\d{1,3}(?:(?:,|[ \u00a0\u202f])\d{3})+", t):
        return int(re.sub(r"[^\d]", "", t))
    if re.fullmatch(r"\d+", t):
        return int(t)
    return float(t.replace(",", "."))


def _read_number(toks: list[_Tok], i: int) -> _Num | None:
    """The number starting at token ``i``, without its qualifier."""
    tok = toks[i]
    low = tok.low
    n = len(toks)
    nxt = toks[i + 1].low if i + 1 < n else ""
    # "a dozen", "half a dozen", "une vingtaine", "un millier"
    if low in ("a", "une", "un") and nxt in _COLLECTIVE:
        end = i + 2
        if end < n and toks[end].low in ("of", "de", "d'"):
            end += 1
        return _Num(i, end, _COLLECTIVE[nxt], "about")
    if low in _VAGUE_WORDS or (low in ("des", "plusieurs", "tens") and (nxt in _VAGUE_WORDS or nxt == "of")):
        j = i if low in _VAGUE_WORDS else i + 1
        if low == "tens" and nxt == "of" and i + 2 < n and toks[i + 2].low == "thousands":
            qual, value, j = "thousands", 20000, i + 2
        elif toks[j].low not in _VAGUE_WORDS:
            return None
        else:
            qual, value = _VAGUE_WORDS[toks[j].low]
        end = j + 1
        if end < n and toks[end].low in ("of", "de", "d'"):
            end += 1
        return _Num(i, end, value, qual)
    raw: float | None = _digits(tok)
    one_word = None
    if raw is None:
        raw = _word_value(low)
        if raw is None:
            return None
        if low in ("one", "un", "une"):
            one_word = low
    end = i + 1
    if end < n and toks[end].low in _SCALES and not (tok.glued_right and toks[end].start == tok.end):
        scale = _SCALES[toks[end].low]
        if raw < 1000 and not (scale == 100 and toks[end].low in ("cent", "cents") and i > 0 and toks[i - 1].low == "pour"):
            raw *= scale
            end += 1
            if end < n and toks[end].low in _SCALES:  # "three hundred thousand"
                raw *= _SCALES[toks[end].low]
                end += 1
    if raw != int(raw):
        return None  # 7.4: a measure, not a count
    return _Num(i, end, int(raw), None, one_word=one_word)


def _is_year(tok: _Tok, value: int) -> bool:
    return bool(re.fullmatch(r"\d{4}", tok.text)) and 1800 <= value <= 2100


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


# ---------------------------------------------------------------------------------------------- triggers

_TRIGGERS: dict[str, str] = {}
for _cat, _words in {
    "killed": "killed kill kills killing dead died die dies deaths fatalities perished perish slain abattu abattus abattue abattues "
    "tué tués tuée tuées tue tuent tuant mort morts morte mortes décès décédé décédés décédée décédées péri périssent périt tués",
    "injured": "injured injuring injures injure injuries wounded wounding wounds wound hurt hospitalised hospitalized "
    "blessé blessés blessée blessées blessant hospitalisé hospitalisés hospitalisée hospitalisées",
    "missing": "missing disparu disparus disparue disparues introuvables",
    "displaced": "displaced displaces homeless fled flee fleeing déplacé déplacés déplacée déplacées fui fuir fuient",
    "arrested": "arrested arresting arrests arrest detained detaining detains detain nab nabbed nabs "
    "interpellé interpellés interpellée interpellées interpellations arrêté arrêtés arrêtée arrêtées arrestations",
    "kidnapped": "kidnapped abducted abducting abducts kidnaps kidnapping abduct enlevé enlevés enlevée enlevées enlève kidnappé kidnappés",
    "evacuated": "evacuated evacuating evacuates évacué évacués évacuée évacuées évacue",
    "rescued": "rescued rescuing rescues secouru secourus secourue secourues secourt sauvé sauvés sauvée sauvées",
}.items():
    for _w in _words.split():
        _TRIGGERS[_w] = _cat
_PHRASE_TRIGGERS = [  # (tokens, category)
    (("lost", "their", "lives"), "killed"), (("lost", "his", "life"), "killed"), (("lost", "her", "life"), "killed"),
    (("perdu", "la", "vie"), "killed"), (("shot", "dead"), "killed"), (("unaccounted", "for"), "missing"),
    (("taken", "to", "hospital"), "injured"), (("treated", "at", "the", "scene"), "injured"),
    (("garde", "à", "vue"), "arrested"), (("gardes", "à", "vue"), "arrested"), (("forced", "from"), "displaced"),
    (("taken", "into", "custody"), "arrested"), (("among", "the", "dead"), "killed"), (("parmi", "les", "morts"), "killed"),
    (("gunned", "down"), "killed"), (("treated", "for"), "injured"), (("soignés", "pour"), "injured"),
    (("among", "the", "injured"), "injured"), (("among", "the", "wounded"), "injured"), (("parmi", "les", "blessés"), "injured"),
]  # fmt: skip
# Transitive verbs right before the number ("killing 12", "a interpellé 23 personnes").
_LEFT_VERBS = {w: c for w, c in _TRIGGERS.items() if c != "displaced"} | {"displacing": "displaced", "forcing": "displaced"}
for _noun in (
    "dead",
    "deaths",
    "fatalities",
    "injuries",
    "mort",
    "morts",
    "morte",
    "mortes",
    "décès",
    "interpellations",
    "arrestations",
    "homeless",
):
    _LEFT_VERBS.pop(_noun, None)
_TOLL_WORDS = {"toll", "bilan"}
_TOLL_PHRASES = [
    ("number", "of", "dead"),
    ("number", "of", "deaths"),
    ("nombre", "de", "morts"),
    ("among", "the", "dead"),
    ("parmi", "les", "morts"),
]
_PEOPLE = {
    "people", "persons", "person", "civilians", "children", "soldiers", "fighters", "combatants", "members", "others", "residents",
    "migrants", "men", "women", "students", "protesters", "police", "officers", "passengers", "workers",
    "personnes", "personne", "civils", "enfants", "soldats", "combattants", "membres", "autres", "habitants",
    "hommes", "femmes", "élèves", "manifestants", "policiers", "passagers", "ouvriers",
}  # fmt: skip
_CLAUSE_STOP = {
    ".",
    ";",
    ":",
    "!",
    "?",
    "(",
    ")",
    "«",
    "»",
    '"',
    "“",
    "”",
    "but",
    "mais",
    "while",
    "tandis",
    "said",
    "says",
    "selon",
    "according",
}
_CONJ = {"and", "et", "or", "ou", "as", "well", "ainsi", "que", "plus"}
_PAREN_START = {"including", "among", "dont", "parmi", "notamment", "mostly", "mainly", "aged", "âgés", "âgées", "âgé", "âgée",
                "most", "pour", "majoritairement", "all", "tous", "toutes"}  # fmt: skip


def _trigger_at(toks: list[_Tok], i: int) -> tuple[str, int] | None:
    """The category of a trigger starting at token ``i``, and the index after it."""
    if i >= len(toks):
        return None
    low = toks[i].low
    for phrase, cat in _PHRASE_TRIGGERS:
        if low == phrase[0] and tuple(t.low for t in toks[i : i + len(phrase)]) == phrase:
            return cat, i + len(phrase)
    found = _TRIGGERS.get(low)
    if found is None:
        return None
    if (
        low in ("die", "dies", "mort", "morte", "fui", "hurt", "dead")
        and i > 0
        and toks[i - 1].low in ("the", "la", "le", "of", "de")
    ):
        return None  # "the dead" as a noun phrase is handled by the toll phrases
    return found, i + 1


def _ends_with(toks: list[_Tok], end: int, phrase: tuple[str, ...]) -> bool:
    k = len(phrase)
    return end - k >= 0 and tuple(t.low for t in toks[end - k : end]) == phrase


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


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start() + (text[m.start()] in ".!?")))
        start = m.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if e > s]


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


def _classify(toks: list[_Tok], nums: list[_Num], idx: int, sent_end: int) -> tuple[str | None, int, str]:
    """The category of number ``idx``, the token index where its counted noun phrase ends, and how."""
    num = nums[idx]
    next_start = nums[idx + 1].start if idx + 1 < len(nums) else len(toks)
    # the counted noun phrase: words after the number up to a trigger, a verb or punctuation
    np_end = num.end
    limit = min(sent_end, next_start)
    while np_end < limit and np_end < num.end + 4:
        t = toks[np_end]
        if _trigger_at(toks, np_end) is not None or not t.text[0].isalpha() or t.low in _STOP_NP:
            break
        np_end += 1
    # (a) a trigger right after the noun phrase: "12 dead", "12 people killed", "2 millions de déplacés"
    hit = _trigger_at(toks, np_end) if np_end < limit else None
    if hit is not None and np_end - num.end <= 3:
        return hit[0], np_end, "right"
    # (b) a transitive verb right before: "killing at least 12", "a interpellé 23 personnes"
    if num.start > 0:
        prev = toks[num.start - 1].low
        if prev in _LEFT_VERBS:
            return _LEFT_VERBS[prev], np_end, "left"
        if (
            num.start > 1
            and (toks[num.start - 2].low, prev) in (("coûté", "la"),)
            or _ends_with(toks, num.start, ("la", "vie", "à"))
        ):
            return "killed", np_end, "left"
        if _ends_with(toks, num.start, ("claimed", "the", "lives", "of")) or _ends_with(toks, num.start, ("shot", "dead")):
            return "killed", np_end, "left"
        if num.end < len(toks) and toks[num.end].low == "lives" and prev in ("claimed", "claim", "claims", "claiming"):
            return "killed", num.end + 1, "left"  # "claimed 112 lives"
        for family in (("a", "family", "of"), ("une", "famille", "de")):  # "killed a family of five"
            k0 = num.start - len(family)
            if _ends_with(toks, num.start, family) and k0 > 0 and toks[k0 - 1].low in _LEFT_VERBS:
                return _LEFT_VERBS[toks[k0 - 1].low], np_end, "left"
    # (c) a toll before it in the clause: "the death toll has risen to 1,284", "among the dead were three"
    j = num.start - 1
    prev_end = nums[idx - 1].end if idx > 0 else 0
    while j >= max(prev_end, num.start - 12):
        t = toks[j]
        if t.low in (".", ";", "!", "?") or (t.low == "," and j < num.start - 1):
            break
        if t.low in _TOLL_WORDS or any(_ends_with(toks, j + 1, p) for p in _TOLL_PHRASES):
            return "killed", np_end, "toll"
        if t.low in ("number", "nombre"):  # "the number of people killed has climbed to 1,700"
            for k in range(j + 1, min(j + 5, num.start)):
                hit = _trigger_at(toks, k)
                if hit is not None:
                    return hit[0], np_end, "toll"
        j -= 1
    # (d) a verb further right in the clause: "12 people have been killed", "3 of its members perished"
    k = np_end
    steps = 0
    starts = {m.start for m in nums}
    while k < limit and steps < 14:
        t = toks[k]
        hit = _trigger_at(toks, k)
        if hit is not None:
            return hit[0], np_end, "right"
        if t.low in (",", "and", "et") and k + 1 < limit and toks[k + 1].text[0].isdigit() and k + 1 not in starts:
            k += 1  # "aged 25, 31 and 40": numbers that are not counts do not end the clause
            steps += 1
            continue
        if t.low == ",":
            if k + 1 < limit and toks[k + 1].low in _PAREN_START:  # skip ", including three children,"
                m = k + 1
                while m < limit and (
                    toks[m].low not in (",", ".", ";") or (toks[m].low == "," and m + 1 < limit and toks[m + 1].text[0].isdigit())
                ):
                    m += 1
                if m < limit and toks[m].low == ",":
                    k = m + 1
                    steps += 1
                    continue
            break
        if t.low in _CLAUSE_STOP or t.low in ("and", "et", "or", "ou") or k in starts:
            break
        k += 1
        steps += 1
    return None, np_end, ""


_STOP_NP = {
    "were", "was", "are", "is", "have", "has", "had", "been", "be", "will", "would", "may", "might", "could", "remain", "remains",
    "ont", "sont", "a", "avaient", "avait", "été", "est", "étaient", "seraient", "sera", "restent", "reste",
    "in", "on", "at", "from", "after", "near", "during", "and", "et", "who", "qui", "that", "including", "dont", "with",
    "dans", "à", "lors", "après", "près", "en", "sur", "to", "when", "as", "by", "par", "for", "pour", "since", "depuis",
    "still", "toujours", "reportedly", "feared", "believed", "said", "say", "says", "aged", "âgés", "âgées", "âgé", "âgée",
}  # fmt: skip


def extract_figures(text: str, lang: str | None = None) -> list[Figure]:
    """Every count of people ``text`` gives, in order, each with what it counts and the source its
    sentence names. ``lang`` is accepted for symmetry; the English and French rules both apply,
    since a feed's language label is often wrong and the two vocabularies do not collide."""
    out: list[Figure] = []
    for s, e in _sentences(text):
        if _CANDIDATE.search(text, s, e):  # most sentences hold no number: skip them before tokenising
            out.extend(_figures_in(text[s:e], s, lang))
    return out


_CANDIDATE = re.compile(
    r"\d|\b(?:"
    + "|".join(sorted({w.split("-")[0] for w in _NUMBER_START} - {"a", "un", "une", "des"}, key=len, reverse=True))
    + r"|dozen|douzaine|dizaine|quinzaine|vingtaine|trentaine|quarantaine|cinquantaine|soixantaine|centaine|millier"
    + r"|une?\s+(?:personne|mort|bless|tué|disparu|décès))",
    re.I,
)


def _figures_in(sentence: str, offset: int, lang: str | None) -> list[Figure]:
    toks = _tokens(sentence)
    nums = _mentions(toks, sentence)
    if not nums:
        return []
    cats = [
        _classify(toks, nums, idx, len(toks)) if not _subset(toks, num) else ("-", num.end, "") for idx, num in enumerate(nums)
    ]
    # lists share the verb: "two children and 8 combatants were killed"
    for idx in range(len(nums) - 2, -1, -1):
        what, np_end, _ = cats[idx]
        if what is None and np_end < len(toks):
            between = [t.low for t in toks[np_end : nums[idx + 1].start]]
            if between and all(w in _CONJ or w == "," for w in between) and cats[idx + 1][0] not in (None, "-"):
                cats[idx] = (cats[idx + 1][0], np_end, "list")
    # "up from 41", "contre 41": the same count as the figure before
    for idx in range(1, len(nums)):
        if cats[idx][0] is None and cats[idx - 1][0] not in (None, "-"):
            before = " ".join(t.low for t in toks[max(0, nums[idx].start - 2) : nums[idx].start])
            if before in ("up from", "down from", "compared with") or before.endswith("contre"):
                cats[idx] = (cats[idx - 1][0], cats[idx][1], "was")
    attributions: list[Attribution] | None = None
    out = []
    for num, (what, np_end, _how) in zip(nums, cats, strict=True):
        if what is None or what == "-":
            continue
        if attributions is None:
            attributions = extract_attributions(sentence, lang)
        s, e = toks[num.start].start, toks[max(np_end, num.end) - 1].end
        counted = sentence[toks[num.end].start : toks[np_end - 1].end] if np_end > num.end else ""
        source = min(attributions, key=lambda a: min(abs(a.start - e), abs(s - a.end))).source if attributions else None
        out.append(Figure(num.value, num.qualifier, what, counted, sentence[s:e], s + offset, e + offset, source, num.high))
    return out


# ---------------------------------------------------------------------------------------------- attributions

_SRC = r"([^,.;:!?()«»\"“”\n]{2,90}?)"
_SRC_END = (
    r"(?=\s*(?:[,.;:!?()«»\"“”\n]|$|\s(?:that|que|qui|on\s+(?:"
    + "|".join(sorted(_WEEKDAYS))
    + r")|in\s+a\s+statement|late|earlier|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\b))"
)
_VERBS_EN = r"said|says|say|told|tell|tells|reported|reports|announced|confirmed|stated|added|indicated|understands"
_VERBS_FR = (
    r"indiqué|déclaré|affirmé|annoncé|précisé|rapporté|expliqué|assuré|souligné|ajouté|confirmé|estimé|fait\s+savoir|dit|signalé"
)
_WEEKDAY_RE = "|".join(sorted(_WEEKDAYS))
_ATTR_PATTERNS = [
    re.compile(r"\b(?:according\s+to|selon|d['’]après|per|citing)\s+" + _SRC + _SRC_END, re.I),
    re.compile(r"(?:[,«»\"“”]|^)\s*(?:" + _VERBS_EN + r")\s+(?!\d)" + _SRC + _SRC_END, re.I | re.M),
    re.compile(r"(?:[,«»\"“”]|^)\s*(?:(?:a|ont|avait|avaient)\s+)?(?:" + _VERBS_FR + r"|indique|affirme|annonce|précise|rapporte|assure)"
               r"(?:\s+(?:" + _WEEKDAY_RE + r"))?(?:\s+à\s+l['’]AFP)?\s+" + _SRC + _SRC_END, re.I | re.M),
]  # fmt: skip
_SUBJECT_VERB = re.compile(
    r"\b(?:(?:has|have|had)\s+)?(?:(?:now|also|later|earlier|still|désormais)\s+)?(?:"
    + _VERBS_EN
    + r"|put\s+the\s+(?:number|toll|death\s+toll))\b"
    r"|\b(?:a|ont|avait|avaient)\s+(?:" + _VERBS_FR + r"|porté\s+le\s+bilan)\b"
    r"|\b(?:font|fait)\s+(?:désormais\s+)?état\b"
    r"|\b(?:indique|affirme|annonce|rapporte|précise|assure)\b",
    re.I,
)
# Leading articles, in lower or title case only: "UN" is an organisation, not the article "un".
_LEADING = re.compile(r"^(?:(?:[Tt]he|[Aa]n?|[Ll][ae]s?|[Uu]ne?|[Dd]es|[Dd]u|[Dd]e\s+la)\s+|(?:[LlDd]['’]|[Dd]e\s+l['’])\s*)+")
_PRONOUNS = {"he", "she", "they", "it", "we", "i", "you", "we're", "i'm", "you're", "they're", "who", "which", "this", "that", "there", "il", "elle", "ils", "elles",
             "on", "nous", "vous", "je", "one", "reports", "a", "an", "the"}  # fmt: skip
_BOUNDARY_WORDS = re.compile(
    r"\b(?:that|but|while|when|after|before|because|since|if|who|which|whom|que|qui|mais|lorsque|quand|as|et|and)\b", re.I
)
_REPORT_WORDS = re.compile(
    r"^(?:(?:preliminary|latest|official|new|provisional|initial|a|the|an|un|une|le|la|les|des|de)\s+)*"
    r"(?:figures?|statement|toll|tally|count|report|data|estimates?|bilan|chiffres?|communiqué|décompte|statistics)\s+"
    r"(?:from|by|of|issued\s+by|compiled\s+by|released\s+by|de|du|des|d['’]|établi\s+par|par)\s+",
    re.I,
)
_PER_NOT = re.compile(
    r"^(?:cent|capita|day|week|month|year|hour|person|head|minute|second|km|kilo|mile|litre|liter|share|annum|se)\b", re.I
)


def _clean_source(raw: str) -> str | None:
    s = " ".join(raw.split()).strip(" -–—'’")
    s = _REPORT_WORDS.sub("", s)
    s = _LEADING.sub("", s).strip()
    s = re.sub(r"\s+(?:figures|data|estimates|statistics|chiffres)$", "", s, flags=re.I)
    first = s.split()[0].lower().split("'")[0] if s else ""
    if (
        not s
        or s.lower() in _PRONOUNS
        or s.lower() == "sources"
        or first in _PRONOUNS
        or any(ch.isdigit() for ch in s)
        or len(s.split()) > 9
        or any(
            not w.isupper() and (w.lower() in _TRIGGERS or w.lower() in _UNITS) for w in s.split()
        )  # "said five were hurt"; not "UN"
    ):
        return None
    return s


def extract_attributions(text: str, lang: str | None = None) -> list[Attribution]:
    """The sources ``text`` names, in order: "according to X", "X said", "said X", "per X", "citing X",
    "selon X", "d'après X", "a indiqué X", "X a affirmé"... Pronouns ("he said") name no one."""
    found: list[Attribution] = []
    for pat in _ATTR_PATTERNS:
        for m in pat.finditer(text):
            if m.group(0).lower().lstrip().startswith("per") and _PER_NOT.match(m.group(1)):
                continue
            src = _clean_source(m.group(1))
            if src:
                found.append(Attribution(src, m.group(0).strip(' ,«»"“”'), m.start(1), m.end(1)))
    for m in _SUBJECT_VERB.finditer(text):
        # the subject: the words before the verb back to punctuation or a clause word, at most 7
        head = text[max(0, m.start() - 120) : m.start()]
        cut = max(head.rfind(ch) for ch in ',.;:!?()«»"“”\n')
        head = head[cut + 1 :]
        bounds = list(_BOUNDARY_WORDS.finditer(head))
        # "and" inside a name ("Devon and Cornwall Police", "Risk Reduction and Management Council") is kept
        before_and = head[: bounds[-1].start()].split() if bounds else []
        keep_and = (
            bounds
            and bounds[-1].group().lower() in ("and", "et")
            and head[bounds[-1].end() :].strip()[:1].isupper()
            and bool(before_and)
            and before_and[-1][:1].isupper()
        )
        if bounds and not keep_and:
            head = head[bounds[-1].end() :]
        words = head.split()
        if not words or len(words) > 9:
            continue
        if any(_TRIGGERS.get(w.lower()) for w in words) or any(w[0].isdigit() for w in words):
            continue
        src = _clean_source(" ".join(words))
        if src:
            start = m.start() - len(head) + (len(head) - len(head.lstrip()))
            found.append(Attribution(src, text[start : m.end()], start, start + len(head.strip())))
    found.sort(key=lambda a: a.start)
    out: list[Attribution] = []
    for a in found:
        if out and a.start < out[-1].end:
            continue
        out.append(a)
    return out


# ---------------------------------------------------------------------------------------------- places and dates

_CAP = r"[A-ZÀ-ÖØ-Þ][\w’'-]*"
_PLACE_SEQ = _CAP + r"(?:\s(?:" + _CAP + r"|al-\w+|el-\w+))?(?:\s(?:" + _CAP + r"))?"
_PLACE_RE = re.compile(
    r"\b(?:in|near|outside|across|on|at|off|off\s+the\s+coast\s+of|north\s+of|south\s+of|east\s+of|west\s+of|"
    r"à|au|aux|en|dans|près\s+de|sur|vers|au\s+large\s+de|"
    r"(?:région|province|ville|village|État|département|marché|procureur|district)\s+(?:de|d['’]))"
    r"\s+(?:(?:the|la|le|les|l['’])\s*)?(" + _PLACE_SEQ + r")"
)
_HEADLINE_PLACE = re.compile(r"^(" + _CAP + r")\s?:\s", re.M)
_NOT_PLACE = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "the", "a", "an", "un", "une", "le", "la",
    "update", "live", "markets", "breaking", "exclusive", "video", "watch", "bourse", "loto", "séisme", "actualisation",
    "direct", "vidéo", "incendie", "sport", "météo", "opinion", "analysis", "analyse", "terror", "horror", "coup", "frappes",
    "telegram", "twitter", "facebook", "x", "parliament", "police", "he", "she", "it", "they", "i", "we", "his", "her",
    "street", "road", "lane", "avenue", "rue", "state", "province", "region", "région", "état",
}  # fmt: skip
_STREETS = {"street", "road", "lane", "avenue", "rue", "boulevard", "square", "place", "way", "drive"}
_DEMONYM = re.compile(r"(?:ian|ians|ese|ish|ien|iens|ienne|iennes|ais|aise|aises|ois|oise)$")


def extract_places(text: str, lang: str | None = None) -> list[Place]:
    """Capitalised names after a locative preposition ("in Idlib", "près de Rennes", "région de Kidal"),
    and a headline's leading "Country:". Experimental: see the measured precision in the docs."""
    out: list[Place] = []
    for m in _PLACE_RE.finditer(text):
        name = m.group(1)
        words = name.split()
        if any(w.lower() in _STREETS for w in words):
            continue
        while words and (words[-1].lower() in _NOT_PLACE or words[-1].lower() in _MONTHS):
            words.pop()
        if not words or words[0].lower() in _NOT_PLACE or words[0].lower() in _MONTHS or words[0].lower() in _WEEKDAYS:
            continue
        if words[0].isupper() and len(words[0]) > 1 and len(words) == 1:
            continue  # an acronym: an organisation more often than a place
        if any(_DEMONYM.search(w.lower()) for w in words):
            continue
        if m.group(0).split()[0] in ("on", "at") and text[m.end(1) : m.end(1) + 1] not in (",", ".", "", " "):
            continue
        name = " ".join(words)
        out.append(Place(name, m.start(1), m.start(1) + len(name)))
    for m in _HEADLINE_PLACE.finditer(text):
        if m.group(1).lower() not in _NOT_PLACE and not m.group(1).isupper():
            out.append(Place(m.group(1), m.start(1), m.end(1)))
    out.sort(key=lambda p: p.start)
    return out


_MONTH_RE = "|".join(sorted((m for m in _MONTHS if len(m) > 3 or m in ("mai", "may")), key=len, reverse=True))
_DATE_RE = re.compile(
    r"\b(?:(?:le\s+)?\d{1,2}(?:er)?\s+(?:" + _MONTH_RE + r")(?:\s+\d{4})?"
    r"|(?:" + _MONTH_RE + r")\s+\d{1,2}(?:,\s+\d{4})?(?!\d)"
    r"|(?:" + _MONTH_RE + r")\s+\d{4}"
    r"|(?:" + _WEEKDAY_RE + r")"
    r"|(?:(?<=since\s)|(?<=depuis\s))(?:" + _MONTH_RE + r")"
    r"|(?:1[89]|20)\d{2}(?!\d|,\d)(?!\s(?:people|personnes|morts|dead))"
    r")\b",
    re.I,
)


def extract_dates(text: str, lang: str | None = None) -> list[DateMention]:
    """Weekdays, "12 March", "March 12, 2024", "mars 2023", a bare year, "since April"."""
    out = []
    for m in _DATE_RE.finditer(text):
        s = m.group(0)
        if s.lower() == "may" or (s[:1].isupper() is False and s.lower() in ("mai",) and False):
            continue
        if s.lower().startswith("le "):
            s, start = s[3:], m.start() + 3
        else:
            start = m.start()
        out.append(DateMention(s, start, start + len(s)))
    return out


# ---------------------------------------------------------------------------------------------- comparing variants

_GENERIC = {"", "people", "persons", "personnes", "civilians", "civils", "others", "autres"}


@dataclass(frozen=True)
class FactValue:
    """One figure for a category as some outlets report it."""

    key: str  # what makes two reports the same value: the number, or a VAGUE plural
    value: int
    label: str
    outlets: tuple[str, ...]  # in the order they published
    attributions: tuple[str, ...]  # the sources they name for it, most named first
    first_published: datetime
    last_published: datetime


@dataclass(frozen=True)
class FactGroup:
    """What a story's variants say for one category: every distinct value, most outlets first."""

    what: str
    values: tuple[FactValue, ...]
    newest: FactValue  # the value the most recently published variant gives

    @property
    def agree(self) -> bool:
        return len(self.values) == 1


def _headline_figure(figures: Iterable[Figure], what: str) -> Figure | None:
    """A variant's figure for a category: its first total ("12 people"), else its first figure; later
    sub-counts ("3 of its members") and background ("a war that killed 500,000") are not its claim."""
    of_what = [f for f in figures if f.what == what]
    if not of_what:
        return None
    return next((f for f in of_what if f.counted.lower() in _GENERIC), of_what[0])


def compare(variants: Sequence[tuple[str, datetime, str, str | None]]) -> list[FactGroup]:
    """Per category, the values a story's variants give (``(source, published, text, lang)`` each), the
    outlets and named sources behind each, and the newest. Categories most reported first."""
    per_variant = [(source, published, extract_figures(text, lang)) for source, published, text, lang in variants]
    groups = []
    for what in CATEGORIES:
        reports: dict[str, list[tuple[str, datetime, Figure]]] = {}
        for source, published, figures in per_variant:
            fig = _headline_figure(figures, what)
            if fig is not None:
                key = fig.qualifier if fig.qualifier in VAGUE else str(fig.value)
                reports.setdefault(key or "", []).append((source, published, fig))
        if not reports:
            continue
        values = []
        for key, rows in reports.items():
            rows.sort(key=lambda r: r[1])
            attrs = Counter(f.attribution for _, _, f in rows if f.attribution)
            labels = Counter(f.label for _, _, f in rows)
            values.append(
                FactValue(
                    key,
                    rows[0][2].value,
                    labels.most_common(1)[0][0],
                    tuple(dict.fromkeys(s for s, _, _ in rows)),
                    tuple(a for a, _ in attrs.most_common()),
                    rows[0][1],
                    rows[-1][1],
                )  # fmt: skip
            )
        values.sort(key=lambda v: (-len(v.outlets), v.first_published))
        newest = max(values, key=lambda v: (v.last_published, len(v.outlets)))
        groups.append(FactGroup(what, tuple(values), newest))
    groups.sort(key=lambda g: -sum(len(v.outlets) for v in g.values))
    return groups


def story_facts(story: Story) -> list[FactGroup]:
    """``compare`` over a story's variants (loaded with their text)."""
    return compare([(v.source, v.published_at, v.text, None) for v in story.variants])


def summary_line(groups: Sequence[FactGroup]) -> str:
    """One line for a story: "killed: 12 (Syrian Observatory, 5 outlets) · 15 (local medics, 1 outlet); newest: 15 |
    injured: 30 (2 outlets)". A category whose variants agree shows no "newest"."""
    parts = []
    for g in groups:
        shown = []
        for v in g.values:
            n = len(v.outlets)
            who = [*v.attributions[:2], f"{n} outlet{'s' if n != 1 else ''}"]
            shown.append(f"{v.label} ({', '.join(who)})")
        line = f"{g.what}: " + " · ".join(shown)
        if not g.agree:
            line += f"; newest: {g.newest.label}"
        parts.append(line)
    return " | ".join(parts)
