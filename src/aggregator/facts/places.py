"""Places: capitalised names after a locative preposition ("in Idlib", "près de Rennes", "région de
Kidal") and a headline's leading "Country:". Experimental."""

from __future__ import annotations

import re

from .dates import _MONTHS, _WEEKDAYS
from .records import Place

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
