"""Attributions: the sources a text names for what it reports ("according to X", "X said", "said X",
"per X", "selon X", "d'après X", "a indiqué X", "X a affirmé"), cleaned of articles and report words
("figures from", "le bilan de"); pronouns name no one."""

from __future__ import annotations

import re

from .dates import _WEEKDAY_RE, _WEEKDAYS
from .numbers import _UNITS
from .records import Attribution
from .triggers import _TRIGGERS

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
