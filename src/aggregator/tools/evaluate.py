"""``aggregator eval``: replay a labeled JSONL file through the dedup stage and score it.

Each line: ``{"id", "title", "text", "published", "source", "url", "cluster", "lang"}``.
Articles are replayed through the same Deduplicator and settings the daemon uses: in
file order when dated. ``published`` may be null: then the whole file is one batch
(every article gets the same date, so time plays no part), decided as the daemon
decides a poll's undated entries (``Deduplicator.batch_order``, ``refine_batch``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import DedupSettings
from ..dedup import Decision, Deduplicator
from ..errors import EvalError
from .scoring import Scores, score

BATCH_DATE = datetime(2000, 1, 1, tzinfo=timezone.utc)
REQUIRED = ("id", "title", "text", "published", "cluster")


@dataclass(frozen=True)
class LabeledArticle:
    id: str
    title: str
    text: str
    published: datetime | None
    source: str | None
    url: str | None
    cluster: str
    lang: str | None


@dataclass(frozen=True)
class EvalResult:
    scores: Scores
    assignment: dict[str, int]  # article id -> story id
    kinds: dict[str, str]
    seconds: float

    @property
    def articles_per_second(self) -> float:
        return self.scores.items / self.seconds if self.seconds > 0 else float("inf")


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line of a JSONL file; errors name the line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EvalError(str(path), 0, "file not found") from None
    except OSError as exc:
        raise EvalError(str(path), 0, f"cannot read: {exc.strerror or exc}") from None
    # Lines end at "\n" only: U+2028 and friends are legal inside JSON strings (str.splitlines splits there).
    for number, chunk in enumerate(data.split(b"\n"), start=1):
        try:
            line = chunk.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise EvalError(str(path), number, f"not UTF-8 (byte {exc.start + 1} of the line)") from None
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(str(path), number, f"not valid JSON: {exc.msg}") from None


def read_labeled(path: Path) -> list[LabeledArticle]:
    """Parse and validate a labeled file; errors name the line."""
    records: list[LabeledArticle] = []
    seen: set[str] = set()
    for number, raw in json_lines(path):
        if not isinstance(raw, dict):
            raise EvalError(str(path), number, "expected a JSON object")
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise EvalError(str(path), number, f"missing field(s): {', '.join(missing)}")
        for key in ("id", "cluster"):
            if isinstance(raw[key], bool) or not isinstance(raw[key], (str, int)):
                raise EvalError(str(path), number, f"{key} must be a string or an integer, got {json.dumps(raw[key])[:40]}")
        for key in ("source", "url", "lang"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise EvalError(str(path), number, f"{key} must be a string or null, got {json.dumps(raw[key])[:40]}")
        article_id = str(raw["id"])
        if article_id in seen:
            raise EvalError(str(path), number, f"duplicate id {article_id!r}")
        seen.add(article_id)
        if not isinstance(raw["title"], str) or not isinstance(raw["text"], str):
            raise EvalError(str(path), number, "title and text must be strings")
        published = None
        if raw["published"] is not None:
            try:
                published = datetime.fromisoformat(str(raw["published"]).replace("Z", "+00:00"))
            except ValueError:
                raise EvalError(str(path), number, f"published is not an ISO 8601 date: {raw['published']!r}") from None
            if published.tzinfo is None:
                published = published.replace(tzinfo=timezone.utc)
        records.append(
            LabeledArticle(article_id, raw["title"], raw["text"], published, raw.get("source"), raw.get("url"), str(raw["cluster"]), raw.get("lang"))
        )
    if not records:
        raise EvalError(str(path), 0, "no articles in file")
    return records


def batch_dates(records: list[LabeledArticle]) -> Iterator[datetime]:
    """Each record's date, or one shared date for all when any is missing (batch mode)."""
    batch = any(r.published is None for r in records)
    for r in records:
        yield BATCH_DATE if batch or r.published is None else r.published


def replay(records: list[LabeledArticle], settings: DedupSettings) -> Iterator[tuple[int, Decision, int]]:
    """Each record through the dedup stage, as the daemon would: (its number from 1, the decision,
    the story it joined). Dated: one by one in file order. Undated: as one batch that arrived
    together (``Deduplicator.batch_order``, then ``refine_batch``). A new story is numbered after
    the article that started it."""
    dedup = Deduplicator(settings)
    dates = list(batch_dates(records))
    if any(r.published is None for r in records):
        yield from _replay_batch(dedup, records, dates)
        return
    for number, (record, published) in enumerate(zip(records, dates, strict=True), start=1):
        placement = dedup.decide(dedup.sign(record.title, record.text, record.source), published, record.source, published, len(record.text))
        story_id = placement.story_id if placement.story_id is not None else number
        dedup.add(number, story_id, placement)
        yield number, placement.decision, story_id


def _replay_batch(dedup: Deduplicator, records: list[LabeledArticle], dates: list[datetime]) -> Iterator[tuple[int, Decision, int]]:
    # Articles are indexed under their place in the order decided, as the daemon's rows get their ids in it.
    keys: list[int] = []

    def key_of(i: int, _sig: object) -> int:
        keys.append(i + 1)
        return len(keys)

    decided = dedup.decide_batch([(r.title, r.text, published, r.source, published) for r, published in zip(records, dates, strict=True)], key_of)
    done = {}
    for i, _key, placement in decided:
        decision = placement.decision
        story, matched = decision.story_id, decision.matched_article_id
        assert story is not None
        if matched is not None:  # the key of the article matched, back to its number in the file
            decision = replace(decision, matched_article_id=keys[matched - 1])
        done[i + 1] = (decision, abs(story))  # a provisional id -k: the story the k-th article started
    for number in range(1, len(records) + 1):
        yield number, *done[number]


def evaluate(records: list[LabeledArticle], settings: DedupSettings, progress: Callable[[int], None] | None = None) -> EvalResult:
    """Assign every record to a story, exactly as the daemon would, and score against gold.
    ``progress(total)`` is called as each record is placed."""
    assignment: dict[str, int] = {}
    kinds: dict[str, str] = {}
    started = time.perf_counter()
    for number, decision, story_id in replay(records, settings):
        assignment[records[number - 1].id] = story_id
        kinds[records[number - 1].id] = decision.kind
        if progress is not None:
            progress(len(records))
    seconds = time.perf_counter() - started
    gold = {r.id: r.cluster for r in records}
    return EvalResult(score(assignment, gold), assignment, kinds, seconds)


# -- corrections replayed with the labels ---------------------------------------------------------

SPLIT_STORY_BASE = 10**12  # story ids of the stories a split makes (above any article number)


@dataclass(frozen=True)
class LabeledCorrection:
    """One line of a corrections file, in the labeled file's article ids. Split:
    ``{"split": {"story_of": ID, "articles": [ID, ...]}}``: the articles listed that are in the story
    of ``story_of`` move to a new story. Merge: ``{"merge": [ID_A, ID_B]}``: the story of ID_B joins
    the story of ID_A."""

    line: int
    kind: str
    anchor: str  # split: the article whose story is split; merge: one in the story kept
    articles: tuple[str, ...]  # split: the articles to move out; merge: one in the story merged in

    @property
    def named(self) -> tuple[str, ...]:
        return (self.anchor, *self.articles)


@dataclass(frozen=True)
class CorrectionLift:
    """What one correction, replayed after those before it, did to the scores."""

    correction: LabeledCorrection
    moved: int  # articles it moved when it was made
    before: Scores
    after: Scores

    @property
    def lift(self) -> float:
        return self.after.bcubed_f1 - self.before.bcubed_f1


def read_corrections(path: Path, records: list[LabeledArticle]) -> list[LabeledCorrection]:
    """Parse a corrections file (JSONL) against the labeled file's ids; errors name the line."""
    known = {r.id for r in records}
    found: list[LabeledCorrection] = []
    for number, raw in json_lines(path):
        split = raw.get("split") if isinstance(raw, dict) else None
        merge = raw.get("merge") if isinstance(raw, dict) else None
        if isinstance(split, dict) and isinstance(split.get("articles"), list) and "story_of" in split and merge is None:
            c = LabeledCorrection(number, "split", str(split["story_of"]), tuple(str(a) for a in split["articles"]))
            if not c.articles or c.anchor in c.articles:
                raise EvalError(str(path), number, "a split names articles to move out, not the one whose story it splits")
        elif isinstance(merge, list) and len(merge) == 2 and split is None:
            c = LabeledCorrection(number, "merge", str(merge[0]), (str(merge[1]),))
        else:
            raise EvalError(str(path), number, 'expected {"split": {"story_of": ID, "articles": [ID, ...]}} or {"merge": [ID, ID]}')
        unknown = [a for a in c.named if a not in known]
        if unknown:
            raise EvalError(str(path), number, f"no article {unknown[0]!r} in the labeled file")
        found.append(c)
    return found


def _apply(c: LabeledCorrection, assign: dict[int, int], number_of: dict[str, int], dedup: Deduplicator | None) -> int:
    """Apply one correction to an assignment (article number -> story) and to the index, if given,
    so the articles after it respect it; returns how many articles moved."""
    if c.kind == "split":
        story = assign[number_of[c.anchor]]
        moved = sorted({number_of[a] for a in c.articles if assign[number_of[a]] == story})
        if len(moved) == sum(1 for s in assign.values() if s == story):
            moved = []
        target = SPLIT_STORY_BASE + c.line
    else:
        target, other = assign[number_of[c.anchor]], assign[number_of[c.articles[0]]]
        moved = [n for n, s in assign.items() if s == other] if other != target else []
    for n in moved:
        assign[n] = target
    if dedup is not None and moved:
        dedup.move(moved, target)
    return len(moved)


def _corrected(records: list[LabeledArticle], settings: DedupSettings, corrections: list[LabeledCorrection]) -> tuple[dict[int, int], dict[int, int]]:
    """The assignment with ``corrections`` made, and how many articles each moved. Dated: each is
    made as soon as the articles it names are placed, and the later articles are decided against
    the corrected index, as in the daemon. Undated (one batch): made on the batch's result.
    Returns (article number -> story, correction's line -> articles it moved)."""
    number_of = {r.id: i for i, r in enumerate(records, start=1)}
    assign: dict[int, int] = {}
    moved: dict[int, int] = {}
    if any(r.published is None for r in records):
        assign = {number: story for number, _decision, story in replay(records, settings)}
        return assign, {c.line: _apply(c, assign, number_of, None) for c in corrections}
    due: dict[int, list[LabeledCorrection]] = {}
    for c in corrections:
        due.setdefault(max(number_of[a] for a in c.named), []).append(c)
    dedup = Deduplicator(settings)
    for number, record in enumerate(records, start=1):
        published = record.published
        assert published is not None
        placement = dedup.decide(dedup.sign(record.title, record.text, record.source), published, record.source, published, len(record.text))
        story_id = placement.story_id if placement.story_id is not None else number
        dedup.add(number, story_id, placement)
        assign[number] = story_id
        for c in sorted(due.get(number, ()), key=lambda c: c.line):
            moved[c.line] = _apply(c, assign, number_of, dedup)
    return assign, moved


def correction_lifts(records: list[LabeledArticle], settings: DedupSettings, corrections: list[LabeledCorrection],
                     progress: Callable[[int], None] | None = None) -> list[CorrectionLift]:
    """Each correction's lift: the scores with the corrections before it made, then with it too
    (one replay per correction, so each is judged with its effect on the articles after it)."""
    gold = {r.id: r.cluster for r in records}
    ids = [r.id for r in records]

    def scores(k: int) -> tuple[Scores, dict[int, int]]:
        assign, moved = _corrected(records, settings, corrections[:k])
        if progress is not None:
            progress(len(corrections) + 1)
        return score({ids[n - 1]: s for n, s in assign.items()}, gold), moved

    previous, _ = scores(0)
    lifts: list[CorrectionLift] = []
    for k, c in enumerate(corrections, start=1):
        after, moved = scores(k)
        lifts.append(CorrectionLift(c, moved[c.line], previous, after))
        previous = after
    return lifts
