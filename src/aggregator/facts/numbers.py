"""Tokens and the numbers in them: the tokeniser, the sentence splitter, and reading a number that
starts at a token ("12", "1,284", "40 000", "twenty-five", "a dozen", "une vingtaine", "dozens of",
"three hundred thousand", "10.5" refused as a measure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

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


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start() + (text[m.start()] in ".!?")))
        start = m.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if e > s]
