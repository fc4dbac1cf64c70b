"""A story's history as stored: its members' arrivals and its ``story_events`` (the timeline's
stored lines), and its articles' earlier versions (``article_revisions``). The figures' changes
are not stored: ``aggregator.timeline`` reads them from the variants' texts.

Functions take the SQLAlchemy connection they run on; ``Store`` owns it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..models import Revision, TimelineEvent
from .schema import article_revisions, articles, story_events, story_members


def timeline(conn: Connection, story_id: int) -> list[TimelineEvent]:
    """Each member's arrival (kind ``arrived``: outlet, title, its kind and similarity as stored now)
    and the story's events, in time order (an arrival before what it caused at the same time)."""
    found: list[tuple[int, TimelineEvent]] = []
    members = (
        select(story_members.c.article_id, story_members.c.joined_at, story_members.c.kind, story_members.c.similarity,
               articles.c.source, articles.c.title)
        .join(articles, articles.c.id == story_members.c.article_id)
        .where(story_members.c.story_id == story_id)
    )
    for article_id, joined_at, kind, similarity, source, title in conn.execute(members):
        how = "canonical" if kind == "canonical" else f"{kind}, {similarity:.2f} similar to the canonical"
        found.append((0, TimelineEvent(joined_at, "arrived", int(article_id), source, f"{title} ({how})")))
    events = (
        select(story_events.c.id, story_events.c.at, story_events.c.kind, story_events.c.article_id, articles.c.source, story_events.c.detail)
        .outerjoin(articles, articles.c.id == story_events.c.article_id)
        .where(story_events.c.story_id == story_id)
    )
    for _id, at, kind, article_id, source, detail in conn.execute(events):
        found.append((1, TimelineEvent(at, kind, article_id, source, detail)))
    found.sort(key=lambda item: (item[1].at, item[0], item[1].article_id or 0))
    return [event for _, event in found]


def revisions(conn: Connection, story_id: int) -> list[Revision]:
    """The earlier versions of the story's articles, by article, oldest first."""
    query = (
        select(article_revisions.c.article_id, articles.c.source, article_revisions.c.seen_at, article_revisions.c.replaced_at,
               article_revisions.c.title, article_revisions.c.text)
        .join(story_members, story_members.c.article_id == article_revisions.c.article_id)
        .join(articles, articles.c.id == article_revisions.c.article_id)
        .where(story_members.c.story_id == story_id)
        .order_by(article_revisions.c.article_id, article_revisions.c.seen_at, article_revisions.c.id)
    )
    return [Revision(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in conn.execute(query)]
