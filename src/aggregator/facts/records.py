"""The records the fact extraction gives: a figure (a count of people and what happened to them), a
named source, a place and a date mention, each with its span in the text; and the categories a
figure can count."""

from __future__ import annotations

from dataclasses import dataclass

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
