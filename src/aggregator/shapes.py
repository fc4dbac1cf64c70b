"""The JSON shapes of stories, feeds and search results: one definition for the CLI's ``--json``
and the web API, so both say the same thing in the same words."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .listing import copy_of
from .models import FeedState, Revision, SearchResult, Story, TimelineEvent

if TYPE_CHECKING:
    from .config import ScheduleSettings
    from .facts import FactGroup


def story_dict(story: Story, with_text: bool = False, timeline: Sequence[TimelineEvent] | None = None,
               revisions: Sequence[Revision] | None = None) -> dict[str, Any]:
    """A story: its head, read state, and every variant; with ``with_text``, the canonical's text,
    who reported first and the figures; its ``timeline`` and its articles' earlier versions
    (``revisions``) when given (``Library.timeline``, ``Library.revisions``)."""
    data: dict[str, Any] = {
        "id": story.id,
        "title": story.title,
        "first_source": story.first_source,
        "first_reported_at": story.first_reported_at.isoformat(),
        "updated_at": story.updated_at.isoformat(),
        "sources": list(story.sources),
        "source_count": len(story.sources),
        "articles": len(story.variants),
        "canonical_article_id": story.canonical_article_id,
        "status": story.status,
        "read_at": story.read_at.isoformat() if story.read_at else None,
        "new_articles": len(story.new_variants) if story.read_at else None,
        "variants": [
            {
                "article_id": v.article_id, "source": v.source, "title": v.title, "url": v.url,
                "published_at": v.published_at.isoformat(), "first_seen_at": v.first_seen_at.isoformat(),
                "kind": v.kind, "similarity": v.similarity, "copy_of": copy_of(story, v),
            }
            for v in story.variants
        ],
    }
    if with_text:
        from .facts import story_facts

        data["canonical_text"] = story.canonical.text
        first = story.first_variant
        data["first_reported"] = {"source": first.source, "at": first.published_at.isoformat(), "article_id": first.article_id}
        if first.reported_at is not None and first.reported_at != first.published_at:  # its date is not credible: it counts from then
            data["first_reported"]["credited_at"] = first.reported_at.isoformat()
        data["facts"] = [facts_dict(g) for g in story_facts(story)]
    if timeline is not None:
        data["timeline"] = [
            {"at": e.at.isoformat(), "kind": e.kind, "article_id": e.article_id, "source": e.source, "text": e.text} for e in timeline
        ]
    if revisions is not None:
        data["revisions"] = [
            {"article_id": r.article_id, "source": r.source, "seen_at": r.seen_at.isoformat(), "replaced_at": r.replaced_at.isoformat(),
             "title": r.title, "text": r.text}
            for r in revisions
        ]
    return data


def merged_away(story_id: int, into: int) -> dict[str, Any]:
    """A story id the reader merged away (``story merge``): the not-found answer, with the story
    that holds its articles now."""
    return {"error": f"story {story_id} was merged into story {into}", "merged_into": into}


def facts_dict(group: FactGroup) -> dict[str, Any]:
    """What a story's variants say for one category (killed, injured, ...): each value with the
    outlets giving it and the sources they name, whether they agree, and the newest value."""
    return {
        "what": group.what,
        "agree": group.agree,
        "newest": group.newest.label,
        "values": [
            {"value": v.value, "label": v.label, "outlets": list(v.outlets), "attributions": list(v.attributions),
             "first_published": v.first_published.isoformat(), "last_published": v.last_published.isoformat()}
            for v in group.values
        ],
    }


def feed_dict(feed: FeedState, sched: ScheduleSettings) -> dict[str, Any]:
    """A feed's stored state, its health word, and the interval in force and why."""
    from .decide import health, interval_in_force

    seconds, reason = interval_in_force(feed, sched)
    return {
        **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(feed).items()},
        "health": health(feed), "interval_in_force_s": seconds, "interval_reason": reason,
    }


def search_dict(result: SearchResult) -> dict[str, Any]:
    """A search result: the story (without variants' text) and its matching articles, each with a
    plain-text snippet and the [start, end) offsets of the matched words in it."""
    return {
        **story_dict(result.story),
        "hits": [
            {
                "article_id": h.article_id, "title": h.title, "source": h.source, "url": h.url,
                "published_at": h.published_at.isoformat(), "snippet": h.snippet, "marks": [list(m) for m in h.marks],
            }
            for h in result.hits
        ],
    }
