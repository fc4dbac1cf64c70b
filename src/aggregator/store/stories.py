"""Story queries: creating stories and changing their members (inside ingest's transaction),
and the read model the commands list and the digest render (``load_stories``, ``counts``).

Functions take the SQLAlchemy connection they run on; ``Store`` and ``Transaction`` own those.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from ..models import Article, Story, Variant
from ..models import first_reported as first_reported_variant
from .articles import as_utc, new_id, stored_time
from .interface import Joined
from .schema import UTCDateTime, articles, feeds, stories, story_events, story_members, story_reads

# Statements run per article, built once: building one per call (and its cache key) cost 3-4x
# its execution.
_INSERT_STORY = insert(stories)
_INSERT_MEMBER = insert(story_members)
_JOIN_STORY = update(stories).where(stories.c.id == bindparam("story_id_")).values(
    canonical_article_id=bindparam("canonical_"),
    title=select(articles.c.title).where(articles.c.id == bindparam("canonical_")).scalar_subquery(),  # the canonical's
    first_reported_at=bindparam("first_reported_", type_=UTCDateTime()),
    updated_at=bindparam("updated_", type_=UTCDateTime()),
)
_SET_MEMBER = update(story_members).where(story_members.c.article_id == bindparam("article_id_"))


def create_story(conn: Connection, article: Article, article_id: int, now: datetime) -> int:
    """A new story with this article as its canonical member; returns the story's id."""
    result = conn.execute(
        _INSERT_STORY,
        dict(canonical_article_id=article_id, title=article.title, first_seen_at=now, first_reported_at=article.reported_at or article.published_at,
             updated_at=now),
    )
    story_id = new_id(result)
    conn.execute(_INSERT_MEMBER, dict(story_id=story_id, article_id=article_id, kind="canonical", similarity=1.0, joined_at=now))
    return story_id


def join_story(conn: Connection, story_id: int, article_id: int, joined: Joined, now: datetime) -> None:
    """An article joins a story: its membership, the story's canonical (its title comes with it),
    first report and update time, and the members whose kind changed."""
    conn.execute(_INSERT_MEMBER, dict(story_id=story_id, article_id=article_id, kind=joined.kind, similarity=joined.similarity, joined_at=now))
    conn.execute(_JOIN_STORY, dict(story_id_=story_id, canonical_=joined.canonical_id, first_reported_=joined.first_reported_at, updated_=now))
    if joined.changed:
        conn.execute(_SET_MEMBER, [dict(article_id_=a, kind=kind, similarity=sim) for a, kind, sim in joined.changed])


def add_story_event(conn: Connection, story_id: int, at: datetime, kind: str, article_id: int | None, detail: str) -> None:
    """A line of the story's timeline beyond its members' arrivals: what changed, when, why."""
    conn.execute(insert(story_events), dict(story_id=story_id, at=at, kind=kind, article_id=article_id, detail=detail))


def story_canonical(conn: Connection, story_id: int) -> int | None:
    """The story's canonical article as stored now."""
    return conn.execute(select(stories.c.canonical_article_id).where(stories.c.id == story_id)).scalar()


def story_ids_between(conn: Connection, start: datetime, end: datetime, activity: bool = True) -> list[int]:
    """Stories with activity in [start, end): a member published then, or first seen then (a story
    first seen today is today's, whatever dates its feeds gave). ``activity`` False: published only."""
    published = and_(articles.c.published_at >= start, articles.c.published_at < end)
    query = (
        select(story_members.c.story_id)
        .join(articles, articles.c.id == story_members.c.article_id)
        .where(or_(published, and_(articles.c.first_seen_at >= start, articles.c.first_seen_at < end)) if activity else published)
        .distinct()
    )
    return [r[0] for r in conn.execute(query)]


# The read model's query, built once, with the ids as an expanding parameter (built per chunk, its
# 500 literal ids were coerced and the statement compiled anew each time); each variant's row
# carries its story's head, so that the ids are sent once.
_VARIANT_COLS = (
    story_members.c.story_id, story_members.c.article_id, story_members.c.kind, story_members.c.similarity, articles.c.source,
    articles.c.title, articles.c.url, stored_time(articles.c.published_at), stored_time(articles.c.first_seen_at),
    stored_time(articles.c.reported_at), stories.c.title, stories.c.canonical_article_id, stored_time(stories.c.first_reported_at),
    stored_time(stories.c.updated_at), stored_time(story_reads.c.read_at),
)


def _variants_query(with_text: bool) -> Any:
    cols = (*_VARIANT_COLS, articles.c.text, articles.c.summary_html) if with_text else _VARIANT_COLS
    return (
        select(*cols)
        .join(articles, articles.c.id == story_members.c.article_id)
        .join(stories, stories.c.id == story_members.c.story_id)
        .outerjoin(story_reads, story_reads.c.story_id == story_members.c.story_id)
        .where(story_members.c.story_id.in_(bindparam("ids", expanding=True)))
        .order_by(articles.c.published_at, articles.c.id)
    )


_VARIANTS, _VARIANTS_WITH_TEXT = _variants_query(False), _variants_query(True)


def load_stories(conn: Connection, story_ids: Sequence[int], with_text: bool = False) -> list[Story]:
    """Stories with their variants, in the order of ``story_ids``. (Rows are read by position and
    times parsed from their stored text: SQLAlchemy's per-column processing was most of a listing's
    cost, thousands of variants a day.)"""
    if not story_ids:
        return []
    by_story: dict[int, list[Variant]] = {i: [] for i in story_ids}
    heads: dict[int, tuple[str, int, datetime, datetime, datetime | None]] = {}
    query = _VARIANTS_WITH_TEXT if with_text else _VARIANTS
    for chunk_start in range(0, len(story_ids), 500):
        for r in conn.execute(query, {"ids": list(story_ids[chunk_start : chunk_start + 500])}).all():
            sid = r[0]
            if sid not in heads:
                heads[sid] = (r[10], r[11], as_utc(r[12]), as_utc(r[13]), as_utc(r[14]) if r[14] else None)
            by_story[sid].append(
                Variant(r[1], sid, r[2], r[3], r[4], r[5], r[6], as_utc(r[7]), as_utc(r[8]),
                        r[15] if with_text else "", (r[16] or "") if with_text else "", as_utc(r[9]) if r[9] is not None else None)
            )
    result = []
    for sid in story_ids:
        found = heads.get(sid)
        if found is None or not by_story[sid]:
            continue
        title, canonical, first_reported, updated, read_at = found
        variants = tuple(by_story[sid])
        # The first source: the first *reported* (``dedup.canonical.credible_time``), as the canonical rule decides.
        result.append(Story(id=sid, title=title, canonical_article_id=canonical, first_reported_at=first_reported,
                            first_source=first_reported_variant(variants).source, updated_at=updated, variants=variants, read_at=read_at))
    return result


def mark_read(conn: Connection, story_ids: Sequence[int], now: datetime) -> int:
    """Mark the stories that exist read at ``now``; returns how many."""
    found = _existing(conn, story_ids)
    if found:
        conn.execute(delete(story_reads).where(story_reads.c.story_id.in_(found)))
        conn.execute(insert(story_reads), [dict(story_id=i, read_at=now) for i in found])
    return len(found)


def mark_unread(conn: Connection, story_ids: Sequence[int]) -> int:
    """Forget the read marks of the stories that exist; returns how many exist."""
    found = _existing(conn, story_ids)
    if found:
        conn.execute(delete(story_reads).where(story_reads.c.story_id.in_(found)))
    return len(found)


def _existing(conn: Connection, story_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(story_ids))
    found: list[int] = []
    for i in range(0, len(wanted), 500):
        found += [r[0] for r in conn.execute(select(stories.c.id).where(stories.c.id.in_(wanted[i : i + 500])))]
    return found


def counts(conn: Connection) -> dict[str, int]:
    """Rows in the feeds, articles, stories and story_members tables."""
    return {
        name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in (("feeds", feeds), ("articles", articles), ("stories", stories), ("story_members", story_members))
    }
