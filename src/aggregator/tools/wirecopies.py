"""Syndicated copies derived from real articles, to measure copy detection.

No public set of wire-copy near-duplicates with text exists, so copies are made
with the edits syndication really makes: a rewritten headline, a byline, a
trimmed tail or an added paragraph, boilerplate, a changed figure, two
paragraphs swapped. Seeded: the same input and seed give the same copies.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import timedelta

from ..config import DedupSettings
from .evaluate import LabeledArticle, replay
from .scoring import Scores, score

BYLINES = ["By {n}, Associated Press", "By {n} | Reuters", "{n}, Staff Writer", "By {n}\nAFP"]
NAMES = ["Jane Miller", "Omar Haddad", "Lucie Martin", "Kenji Sato", "Ana Souza"]
BOILERPLATE = [
    "Copyright 2021 The Associated Press. All rights reserved. This material may not be published, broadcast, rewritten or redistributed.",
    "Sign up for our daily newsletter to get the latest headlines delivered to your inbox.",
    "Click here to read more. Follow us on Twitter and Facebook for updates.",
    "This story has been updated with additional details.",
    "Reporting by the wire desk; editing by the news team.",
]
PREFIXES = ["UPDATE 1-", "WATCH: ", "BREAKING: ", "", ""]
_SENTENCE = re.compile(r"(?<![A-Z]\.[A-Z]\.)(?<!\b[A-Z][a-z]\.)(?<=[.!?])\s+(?=[A-Z\"“‘'(])")


def paragraphs(text: str) -> list[str]:
    found = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(found) <= 2:  # a lead only: treat its sentences as paragraphs
        found = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
    return found or [text]


def make_copy(article: LabeledArticle, rng: random.Random, k: int) -> LabeledArticle:
    """One syndicated copy of ``article`` (a random subset of the usual edits)."""
    paras = paragraphs(article.text)
    title = article.title
    if rng.random() < 0.7:  # headline rewrite
        words = title.split()
        if len(words) > 4 and rng.random() < 0.5:
            words = words[: max(4, int(len(words) * 0.7))]
        title = rng.choice(PREFIXES) + " ".join(words)
        if rng.random() < 0.3:
            title = title.upper()
    if len(paras) > 3 and rng.random() < 0.5:  # trimmed tail
        paras = paras[: max(3, int(len(paras) * rng.uniform(0.7, 0.95)))]
    if rng.random() < 0.4:  # an added paragraph
        paras.insert(rng.randrange(len(paras) + 1), rng.choice(BOILERPLATE[2:]))
    if len(paras) > 3 and rng.random() < 0.3:  # two paragraphs swapped
        i = rng.randrange(1, len(paras) - 1)
        paras[i], paras[i + 1] = paras[i + 1], paras[i]
    if rng.random() < 0.5:  # a changed figure
        for i, p in enumerate(paras):
            m = re.search(r"\d+", p)
            if m:
                paras[i] = p[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + p[m.end() :]
                break
    if rng.random() < 0.6:
        paras.insert(0, rng.choice(BYLINES).format(n=rng.choice(NAMES)))
    if rng.random() < 0.6:
        paras.append(rng.choice(BOILERPLATE))
    published = article.published + timedelta(hours=rng.randint(0, 30)) if article.published else None
    return replace(article, id=f"{article.id}~copy{k}", title=title, text="\n\n".join(paras), published=published,
                   source=f"copy{k}.example", url=None)


def with_copies(records: list[LabeledArticle], seed: int = 7, share: float = 0.5) -> list[tuple[LabeledArticle, str]]:
    """The records plus 1-3 copies of a ``share`` of them, in time order, each with its origin's id."""
    rng = random.Random(seed)
    stream: list[tuple[LabeledArticle, str]] = []
    for r in records:
        stream.append((r, r.id))
        if rng.random() < share:
            stream.extend((make_copy(r, rng, k), r.id) for k in range(rng.randint(1, 3)))
    return sorted(stream, key=lambda item: item[0].published.timestamp() if item[0].published else 0.0)


def copy_detection(records: list[LabeledArticle], settings: DedupSettings, seed: int = 7) -> Scores:
    """Pairwise scores of copy links (articles joined as ``copy``, transitively) against true origins."""
    stream = with_copies(records, seed)
    articles = [a for a, _ in stream]
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.get(i, i) != i:
            i = parent[i]
        return i

    for number, decision, _ in replay(articles, settings):
        if decision.kind == "copy" and decision.matched_article_id is not None:
            a, b = root(number), root(decision.matched_article_id)
            if a != b:
                parent[a] = b
    predicted = {a.id: root(n) for n, a in enumerate(articles, start=1)}
    return score(predicted, {a.id: origin for a, origin in stream})
