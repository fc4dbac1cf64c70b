"""Text to terms: normalising, tokenising, light stemming and the weighted term counts an article's
report-tier vector is made of. Pure functions plus a bounded token cache; no index state."""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable

TITLE_WEIGHT = 2.0
NUMBER_WEIGHT = 1.5
MAX_TERMS = 80  # terms kept per article

STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its
    this that these those he she they we you i his her their our your my me him them us not no so than
    then there here what which who whom whose when where why how all any some more most other such only
    own same too very can will just should would could may might must do does did done has have had
    having also about into over after before under again further once said says say one out up down
    off mr ms mrs get got told tells according while during since because though although against
    between through per via new year years week day days time monday tuesday wednesday thursday friday
    saturday sunday s t d ll re ve m
    le la les un une des du de et ou en dans sur pour par avec est sont au aux ce cette ces qui que
    quoi dont il elle ils elles nous vous je se sa son ses leur leurs pas plus ne l d qu n y
    el los las unos unas del y o en con por para es son al lo su sus que se no
    der die das ein eine und oder mit von zu im ist sind den dem des auf fur nicht sich
    """.split()
)
_APOSTROPHES = re.compile(r"['’`´]")
_DIGIT_GROUPS = re.compile(r"(?<=\d)[,.](?=\d)")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# scripts written without spaces: index character bigrams
_NO_SPACES = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f]")
_ARABIC_FORMS = {0x0640: None, 0x0629: "\u0647", 0x0649: "\u064a"}  # tatweel, teh marbuta, alef maksura
# a digit group split by a no-break or thin space (French and SI typography: "1 400"), before NFKC
# turns those into plain spaces, where a split cannot be told from two numbers
_SPACED_DIGIT_GROUPS = re.compile(r"(?<=\d)[\u00a0\u2009\u202f](?=\d{3}(?!\d))")
_SUFFIXES = ("ings", "ing", "edly", "ed", "es", "s", "ly")


def _combining_marks() -> dict[int, None]:
    """A str.translate table deleting every combining mark (what NFKD splits off accented letters)."""
    ranges = (range(0x300, 0x20000), range(0xE0000, 0xE1000))
    return {c: None for r in ranges for c in r if unicodedata.combining(chr(c))}


def _decimal_digits() -> dict[int, str]:
    """A str.translate table writing every non-ASCII decimal digit (Arabic-Indic, Persian,
    Devanagari, fullwidth, ...) as its ASCII digit, so "١٢" and "12" are one term."""
    return {c: str(unicodedata.decimal(chr(c))) for c in range(0x80, 0x20000) if unicodedata.category(chr(c)) == "Nd"}


_COMBINING = _combining_marks()
_FOLD_FORMS = str.maketrans({**_ARABIC_FORMS, **_decimal_digits()})
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _fold_run(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKD", match.group()).translate(_COMBINING)


def normalize(text: str) -> str:
    """NFKC, case-folded, accents and Arabic vowel marks stripped, digits in ASCII, digit groups
    joined (1,400 and 1 400 -> 1400)."""
    if not text.isascii():
        text = _SPACED_DIGIT_GROUPS.sub("", text)
    text = unicodedata.normalize("NFKC", text).casefold()
    if not text.isascii():
        text = unicodedata.normalize("NFC", _NON_ASCII.sub(_fold_run, text)).translate(_FOLD_FORMS)
    text = _DIGIT_GROUPS.sub("", text)
    return _APOSTROPHES.sub(" ", text)


# ASCII text (the common case) takes a shortcut with the same tokens: after casefolding, a word is
# a run of [a-z0-9], and apostrophes only ever separate words anyway.
_ASCII_DIGIT_GROUP = re.compile(r"[0-9][,.][0-9]")
_ASCII_SEPARATORS = "".join(c if c.isascii() and c.isalnum() and not c.isupper() else " " for c in map(chr, range(128)))


def words(text: str) -> list[str]:
    """Unicode word tokens of ``normalize(text)``; runs of CJK/Thai script become character bigrams."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if folded.isascii():
        if _ASCII_DIGIT_GROUP.search(folded):
            folded = _DIGIT_GROUPS.sub("", folded)
        return folded.translate(_ASCII_SEPARATORS).split()
    text = normalize(text)
    if text.isascii() or not _NO_SPACES.search(text):
        return _WORD.findall(text)
    out: list[str] = []
    for word in _WORD.findall(text):
        if _NO_SPACES.search(word) and len(word) > 1:
            out.extend(word[i : i + 2] for i in range(len(word) - 1))
        else:
            out.append(word)
    return out


@functools.lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    if not word.isascii() or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word



# -- fast signing helpers (results identical to the plain definitions above) ----------------

def term_of(token: str) -> str | None:
    """The term a token counts as (stemmed), or None when it carries no weight."""
    if token in STOPWORDS or (len(token) < 2 and not _NO_SPACES.match(token)):
        return None
    return token if token.isdigit() else _stem(token)


def weigh_plain(title_tokens: list[str], text_tokens: list[str]) -> dict[str, float]:
    """Weighted term counts: title words twice, numbers 1.5x (the reference definition)."""
    counts: dict[str, float] = {}
    for tokens, weight in ((title_tokens, TITLE_WEIGHT), (text_tokens, 1.0)):
        for token, n in Counter(tokens).items():  # weigh and stem each distinct token once
            term = term_of(token)
            if term is not None:
                w = weight * NUMBER_WEIGHT if token.isdigit() else weight
                counts[term] = counts.get(term, 0.0) + w * n
    return counts


# The weights are multiples of 1/4, so weighted counts are exact in any summation order.
EXACT_WEIGHTS = all(float(w * 4).is_integer() for w in (TITLE_WEIGHT, NUMBER_WEIGHT))
TOKEN_CACHE_SIZE = 1 << 17  # distinct tokens remembered by a Deduplicator's TokenCache


class TokenCache:
    """What ``sign`` needs of each token, remembered so that the per-token work runs in C (``map``
    over dict lookups, ``Counter``). Bounded: emptied when full. Every value is computed from its
    key alone, so a lookup that misses (a token not learned yet) is answered by the plain path."""

    def __init__(self, size: int = TOKEN_CACHE_SIZE) -> None:
        self.size = size
        self.term: dict[str, str | None] = {}  # token -> term_of(token)
        self.term_hash: dict[str, int] = {}  # term -> crc32(term)
        self.spaced: dict[str, int] = {}  # token -> crc32(' ' + token) | len(' ' + token, UTF-8 bytes) << 32

    def learn(self, tokens: Iterable[str]) -> None:
        if len(self.term) >= self.size:
            self.term.clear()
            self.term_hash.clear()
            self.spaced.clear()
        for token in tokens:
            term = term_of(token)
            if term is not None:
                self.term_hash[term] = zlib.crc32(term.encode("utf-8"))
            data = b" " + token.encode("utf-8")
            self.spaced[token] = zlib.crc32(data) | len(data) << 32
            self.term[token] = term

    def weigh(self, title_tokens: list[str], text_tokens: list[str]) -> dict[str, float]:
        """``weigh_plain``, faster (raises KeyError if the cache was emptied meanwhile)."""
        for tokens in (title_tokens, text_tokens):
            missing = set(tokens).difference(self.term)
            if missing:
                self.learn(missing)
        term_of = self.term.__getitem__
        counts: dict[str | None, float] = Counter(map(term_of, text_tokens))  # type: ignore[assignment]
        if title_tokens:
            for term, n in Counter(map(term_of, title_tokens)).items():
                counts[term] = counts.get(term, 0) + TITLE_WEIGHT * n
        counts.pop(None, None)
        weighted: dict[str, float] = counts  # type: ignore[assignment]
        for term in [t for t in filter(str.isdigit, weighted)]:  # numbers (their term is the token itself)
            weighted[term] *= NUMBER_WEIGHT
        return weighted
