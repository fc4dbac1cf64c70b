"""Figures: the counts of people a text gives, each classified by what it counts (a trigger to its
right, a verb to its left, a toll before it, a verb further on in its clause), with the source its
sentence names. The conventions they follow are in the package's docstring (``aggregator.facts``)."""

from __future__ import annotations

import re

from .attributions import extract_attributions
from .mentions import _mentions, _subset
from .numbers import _NUMBER_START, _Num, _sentences, _Tok, _tokens
from .records import Attribution, Figure
from .triggers import (
    _CLAUSE_STOP,
    _CONJ,
    _LEFT_VERBS,
    _PAREN_START,
    _STOP_NP,
    _TOLL_PHRASES,
    _TOLL_WORDS,
    _ends_with,
    _trigger_at,
)


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
