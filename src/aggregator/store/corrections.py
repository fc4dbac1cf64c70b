"""The reader's corrections: members moved between stories (a split, a merge, an undo), recorded
in ``corrections`` with a line in each story's timeline (``story_events``); and the corrections
asked for while another process owns the dedup index (``correction_requests``, ``CorrectionQueue``).

The new shape of each story (canonical, kinds) is worked out above the store
(``aggregator.corrections``); these functions write it, in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import UsageError
from .articles import as_utc, new_id
from .interface import (
    Correction,
    CorrectionRequest,
    CorrectionWriter,
    MemberFacts,
    Regrouped,
)
from .schema import articles, correction_requests, corrections, signatures, stories, story_events, story_members

if TYPE_CHECKING:
    from .database import Store


def member_facts(conn: Connection, story_ids: Sequence[int]) -> list[MemberFacts]:
    """Every member of these stories, in article order."""
    query = (
        select(story_members.c.article_id, story_members.c.story_id, stories.c.canonical_article_id, story_members.c.kind,
               story_members.c.similarity, articles.c.published_at, articles.c.first_seen_at, articles.c.reported_at,
               func.length(articles.c.text), signatures.c.data)
        .join(articles, articles.c.id == story_members.c.article_id)
        .join(stories, stories.c.id == story_members.c.story_id)
        .outerjoin(signatures, signatures.c.article_id == story_members.c.article_id)
        .where(story_members.c.story_id.in_(list(story_ids)))
        .order_by(story_members.c.article_id)
    )
    return [MemberFacts(r[0], r[1], r[2], r[3], r[4], as_utc(r[5]), as_utc(r[6]), as_utc(r[7]) if r[7] is not None else None,
                        int(r[8] or 0), r[9]) for r in conn.execute(query)]


def _regroup(conn: Connection, group: Regrouped, now: datetime) -> int:
    """Write one story's new shape; returns its id (a new story's, created here)."""
    ids = [a for a, _, _ in group.members]
    story_id = group.story_id
    if story_id is None:
        first_seen = conn.execute(select(func.min(articles.c.first_seen_at)).where(articles.c.id.in_(ids))).scalar_one()
        title = conn.execute(select(articles.c.title).where(articles.c.id == group.canonical_id)).scalar_one()
        story_id = new_id(conn.execute(insert(stories).values(
            canonical_article_id=group.canonical_id, title=title, first_seen_at=as_utc(first_seen),
            first_reported_at=group.first_reported_at, updated_at=now)))
        gained = True
    else:
        gained = conn.execute(select(func.count()).select_from(story_members)
                              .where(story_members.c.article_id.in_(ids), story_members.c.story_id != story_id)).scalar_one() > 0
    for article_id, kind, similarity in group.members:
        conn.execute(update(story_members).where(story_members.c.article_id == article_id)
                     .values(story_id=story_id, kind=kind, similarity=similarity))
    values: dict[str, object] = dict(
        canonical_article_id=group.canonical_id, first_reported_at=group.first_reported_at,
        title=select(articles.c.title).where(articles.c.id == group.canonical_id).scalar_subquery(),
    )
    if gained:  # a story that gains members is updated (a feed reader shows it again); one that only loses some is not
        values["updated_at"] = now
    conn.execute(update(stories).where(stories.c.id == story_id).values(**values))
    return story_id


def _event(conn: Connection, story_id: int, now: datetime, kind: str, detail: str) -> None:
    conn.execute(insert(story_events).values(story_id=story_id, at=now, kind=kind, article_id=None, detail=detail))


def _articles(n: int) -> str:
    return f"{n} article{'' if n == 1 else 's'}"


def apply_correction(conn: Connection, kind: str, story_id: int, other_story_id: int | None, article_ids: Sequence[int],
                     groups: Sequence[Regrouped], now: datetime) -> Correction:
    """Write a split (``groups``: the story kept, then the new one; ``other_story_id`` None) or a
    merge (``groups``: the story kept, with every member of ``other_story_id``), and record it."""
    written = [_regroup(conn, g, now) for g in groups]
    other = written[1] if kind == "split" else other_story_id
    assert other is not None
    ids = sorted(article_ids)
    correction_id = new_id(conn.execute(insert(corrections).values(
        kind=kind, story_id=story_id, other_story_id=other, article_ids=json.dumps(ids), created_at=now)))
    n = _articles(len(ids))
    if kind == "split":
        _event(conn, story_id, now, "split", f"split: {n} moved to story {other} by the reader (correction {correction_id})")
        _event(conn, other, now, "split", f"split off story {story_id} by the reader: {n} (correction {correction_id})")
    else:
        _event(conn, story_id, now, "merged", f"merged: story {other}'s {n} moved here by the reader (correction {correction_id})")
        _event(conn, other, now, "merged", f"merged into story {story_id} by the reader: {n} (correction {correction_id})")
    return Correction(correction_id, kind, story_id, other, tuple(ids), now)


def undo_correction(conn: Connection, correction_id: int, groups: Sequence[Regrouped], now: datetime) -> Correction:
    """Write the stories as the undo leaves them and mark the correction undone."""
    found = correction(conn, correction_id)
    if found is None:
        raise UsageError(f"no correction with id {correction_id} (`aggregator corrections` lists them)")
    if found.undone_at is not None:
        raise UsageError(f"correction {correction_id} was undone already")
    for group in groups:
        _regroup(conn, group, now)
    conn.execute(update(corrections).where(corrections.c.id == correction_id).values(undone_at=now))
    what = "split" if found.kind == "split" else "merge"
    for story in (found.story_id, found.other_story_id):
        _event(conn, story, now, "undone", f"undone by the reader: the {what} of correction {correction_id}")
    return Correction(found.id, found.kind, found.story_id, found.other_story_id, found.article_ids, found.created_at, now)


def _correction(row: tuple) -> Correction:  # type: ignore[type-arg]
    return Correction(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), as_utc(row[5]), as_utc(row[6]) if row[6] else None)


_COLUMNS = (corrections.c.id, corrections.c.kind, corrections.c.story_id, corrections.c.other_story_id, corrections.c.article_ids,
            corrections.c.created_at, corrections.c.undone_at)


def correction(conn: Connection, correction_id: int) -> Correction | None:
    row = conn.execute(select(*_COLUMNS).where(corrections.c.id == correction_id)).first()
    return _correction(tuple(row)) if row else None


def all_corrections(conn: Connection) -> list[Correction]:
    """Every correction, oldest first (undone ones too, with ``undone_at``)."""
    return [_correction(tuple(r)) for r in conn.execute(select(*_COLUMNS).order_by(corrections.c.id))]


def merged_into(conn: Connection, story_id: int) -> int | None:
    """The story a merge by the reader moved ``story_id``'s members into, followed through later
    merges to the one that holds them now (B into A, then A into Z: Z). None when no merge that
    still stands (not undone) took the story's members."""
    current, seen = story_id, {story_id}
    while True:
        kept = conn.execute(select(corrections.c.story_id)
                            .where(corrections.c.kind == "merge", corrections.c.other_story_id == current, corrections.c.undone_at.is_(None))
                            .order_by(corrections.c.id.desc()).limit(1)).scalar()
        if kept is None or kept in seen:  # (a cycle cannot be recorded: a merged-away story has no members to merge)
            return None if current == story_id else current
        current = kept
        seen.add(kept)


# -- corrections asked for while another process owns the dedup index -------------------------------

_REQUEST_COLUMNS = (correction_requests.c.kind, correction_requests.c.story_id, correction_requests.c.other_story_id,
                    correction_requests.c.article_ids, correction_requests.c.correction_id, correction_requests.c.id,
                    correction_requests.c.requested_at, correction_requests.c.status, correction_requests.c.reason,
                    correction_requests.c.finished_at)


def _request(row: tuple) -> CorrectionRequest:  # type: ignore[type-arg]
    return CorrectionRequest(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], row[5], as_utc(row[6]), row[7], row[8],
                             as_utc(row[9]) if row[9] else None)


def add_request(conn: Connection, asked: CorrectionRequest, now: datetime) -> CorrectionRequest:
    request_id = new_id(conn.execute(insert(correction_requests).values(
        kind=asked.kind, story_id=asked.story_id, other_story_id=asked.other_story_id, article_ids=json.dumps(list(asked.article_ids)),
        correction_id=asked.correction_id, requested_at=now, status="pending")))
    found = request(conn, request_id)
    assert found is not None
    return found


def request(conn: Connection, request_id: int) -> CorrectionRequest | None:
    row = conn.execute(select(*_REQUEST_COLUMNS).where(correction_requests.c.id == request_id)).first()
    return _request(tuple(row)) if row else None


def requests(conn: Connection, statuses: Sequence[str]) -> list[CorrectionRequest]:
    """The requests in these states, oldest first."""
    query = select(*_REQUEST_COLUMNS).where(correction_requests.c.status.in_(list(statuses))).order_by(correction_requests.c.id)
    return [_request(tuple(r)) for r in conn.execute(query)]


def finish_request(conn: Connection, request_id: int, now: datetime, correction_id: int | None = None, reason: str | None = None) -> None:
    """Done with the correction it made (or undid), or failed for ``reason``; a request is finished once."""
    values: dict[str, object] = dict(status="done" if reason is None else "failed", finished_at=now, reason=reason)
    if correction_id is not None:
        values["correction_id"] = correction_id
    conn.execute(update(correction_requests)
                 .where(correction_requests.c.id == request_id, correction_requests.c.status == "pending").values(**values))


class CorrectionQueue:
    """``CorrectionQueueProtocol`` on a ``Store``'s database (the table ``correction_requests``).
    It borrows the store's transactions (``Store._begin``, ``Store._connect``: same package), so
    that a correction and its request's "done" commit together."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, asked: CorrectionRequest, now: datetime) -> CorrectionRequest:
        with self._store._begin() as conn:
            return add_request(conn, asked, now)

    def get(self, request_id: int) -> CorrectionRequest | None:
        with self._store._connect() as conn:
            return request(conn, request_id)

    def pending(self) -> list[CorrectionRequest]:
        with self._store._connect() as conn:
            return requests(conn, ["pending"])

    def unfinished(self) -> list[CorrectionRequest]:
        with self._store._connect() as conn:
            return requests(conn, ["pending", "failed"])

    def fail(self, request_id: int, reason: str, now: datetime) -> None:
        with self._store._begin() as conn:
            finish_request(conn, request_id, now, reason=" ".join(reason.split()))

    def answering(self, request_id: int) -> CorrectionWriter:
        return _Answering(self._store, request_id)


class _Answering:
    """A ``CorrectionWriter`` that marks a request done with the correction it writes."""

    def __init__(self, store: Store, request_id: int) -> None:
        self._store = store
        self._request_id = request_id

    def apply_correction(self, kind: str, story_id: int, other_story_id: int | None, article_ids: Sequence[int],
                         groups: Sequence[Regrouped], now: datetime) -> Correction:
        with self._store._begin() as conn:
            done = apply_correction(conn, kind, story_id, other_story_id, article_ids, groups, now)
            finish_request(conn, self._request_id, now, correction_id=done.id)
            return done

    def undo_correction(self, correction_id: int, groups: Sequence[Regrouped], now: datetime) -> Correction:
        with self._store._begin() as conn:
            done = undo_correction(conn, correction_id, groups, now)
            finish_request(conn, self._request_id, now, correction_id=done.id)
            return done
