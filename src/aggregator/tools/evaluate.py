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


def read_labeled(path: Path) -> list[LabeledArticle]:
    """Parse and validate a labeled file; errors name the line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EvalError(str(path), 0, "file not found") from None
    except OSError as exc:
        raise EvalError(str(path), 0, f"cannot read: {exc.strerror or exc}") from None
    records: list[LabeledArticle] = []
    seen: set[str] = set()
    # Lines end at "\n" only: U+2028 and friends are legal inside JSON strings (str.splitlines splits there).
    for number, chunk in enumerate(data.split(b"\n"), start=1):
        try:
            line = chunk.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise EvalError(str(path), number, f"not UTF-8 (byte {exc.start + 1} of the line)") from None
        if not line.strip():
            continue
        try:
            raw: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(str(path), number, f"not valid JSON: {exc.msg}") from None
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
