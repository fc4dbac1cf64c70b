"""Dates: the month and weekday names (which the other rules also use, to drop "12 March" as a
count or "Monday" as a place or source) and the date mentions of a text."""

from __future__ import annotations

import re

from .records import DateMention

_MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre",
}  # fmt: skip
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
             "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"}  # fmt: skip
_WEEKDAY_RE = "|".join(sorted(_WEEKDAYS))
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
