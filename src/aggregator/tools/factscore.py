"""Score the fact extraction (``aggregator.facts``) against hand-labelled sentences.

Each line of the file: ``{"id", "lang", "style", "split", "text", "figures": [{"value", "qualifier", "what"}],
"attributions": [source, ...], "places": [name, ...], "dates": [text, ...]}``. A figure matches on
value, qualifier and category; a source, place or date on its text with case, accents of quotes,
leading articles and a trailing "(ACRONYM)" set aside. Micro precision and recall over every
sentence, overall and per language; the misses and false alarms name their sentence.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from ..facts import extract_attributions, extract_dates, extract_figures, extract_places

KINDS = ("figures", "attributions", "places", "dates")
# in lower or title case only: "UN" is an organisation, not the article "un"
_ARTICLES = re.compile(r"^(?:(?:[Tt]he|[Aa]n?|[Ll][ae]s?|[Uu]ne?|[Dd]es|[Dd]u)\s+|[LlDd]'\s*)+")


def _norm(s: str) -> str:
    s = " ".join(s.replace("’", "'").split())
    s = re.sub(r"\s*\([^)]*\)$", "", s)
    return _ARTICLES.sub("", s).strip().lower()


def _predict(text: str, lang: str | None) -> dict[str, list[Hashable]]:
    return {
        "figures": [(f.value, f.qualifier, f.what) for f in extract_figures(text, lang)],
        "attributions": [_norm(a.source) for a in extract_attributions(text, lang)],
        "places": [_norm(p.name) for p in extract_places(text, lang)],
        "dates": [_norm(d.text) for d in extract_dates(text, lang)],
    }


def _gold(row: dict[str, Any]) -> dict[str, list[Hashable]]:
    return {
        "figures": [(f["value"], f["qualifier"], f["what"]) for f in row.get("figures", [])],
        "attributions": [_norm(s) for s in row.get("attributions", [])],
        "places": [_norm(s) for s in row.get("places", [])],
        "dates": [_norm(s) for s in row.get("dates", [])],
    }


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3),
            "tp": tp, "fp": fp, "fn": fn}  # fmt: skip


def score_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Micro precision / recall per kind: overall (``all``), per language (``en``, ``fr``) and per split and
    language (``dev:en``, ``heldout:fr``: the held-out sentences were written after the rules and scored
    once before any change), and the errors."""
    counts: dict[tuple[str, str], list[int]] = {}
    errors: list[dict[str, Any]] = []
    n = 0
    for row in rows:
        n += 1
        lang = row.get("lang") or "?"
        pred, gold = _predict(row["text"], row.get("lang")), _gold(row)
        for kind in KINDS:
            p, g = Counter(pred[kind]), Counter(gold[kind])
            tp = sum((p & g).values())
            fp, fn = sum((p - g).values()), sum((g - p).values())
            for key in ((kind, "all"), (kind, lang), (kind, f"{row.get('split') or 'all'}:{lang}")):
                c = counts.setdefault(key, [0, 0, 0])
                c[0] += tp
                c[1] += fp
                c[2] += fn
            if fp or fn:
                errors.append({"id": row.get("id"), "kind": kind, "extra": sorted(map(str, (p - g).elements())),
                               "missed": sorted(map(str, (g - p).elements()))})  # fmt: skip
    result: dict[str, Any] = {"sentences": n, "errors": errors}
    for (kind, lang), (tp, fp, fn) in sorted(counts.items()):
        result.setdefault(kind, {})[lang] = _prf(tp, fp, fn)
    return result


def score_file(path: str | Path) -> dict[str, Any]:
    """Score the labelled JSONL file at ``path``; also times extraction (``us_per_sentence``)."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    result = score_rows(rows)
    t0 = time.perf_counter()
    for row in rows:
        extract_figures(row["text"], row.get("lang"))
    result["us_per_sentence"] = round((time.perf_counter() - t0) / max(1, len(rows)) * 1e6, 1)
    return result
