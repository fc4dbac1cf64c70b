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

The modules, one job each: ``records`` (the records and the categories), ``numbers`` (tokens and
reading a number), ``triggers`` (what a number counts), ``mentions`` (which numbers are candidate
counts), ``figures`` (classifying them into figures), ``attributions``, ``places``, ``dates``, and
``comparison`` (agreeing and differing across a story's variants).
"""

from __future__ import annotations

from .attributions import extract_attributions
from .comparison import FactGroup, FactValue, compare, summary_line
from .comparison import story_facts as story_facts  # imported from here, though not in __all__
from .dates import extract_dates
from .figures import extract_figures
from .places import extract_places
from .records import Attribution, DateMention, Figure, Place

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
