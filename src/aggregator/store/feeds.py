"""Feed queries: the configured feeds, their polling state, and the grouped writes of new states.

Functions take the SQLAlchemy connection they run on; ``Store`` and ``Transaction`` own those.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from ..errors import StorageError
from ..models import FeedState, FeedUpdate, outlet_name
from ..urls import host_of
from .interface import ConfiguredFeed, FeedChange
from .schema import articles, feeds, inbox

# Run per feed, built once: building one per call (and its cache key) cost 3-4x its execution.
_UPDATE_FEED = update(feeds).where(feeds.c.id == bindparam("feed_id_"))


def sync_feeds(conn: Connection, configured: Sequence[ConfiguredFeed], refresh: bool = True) -> None:
    """Insert feeds new to the config and (``refresh``) bring known ones up to it.

    ``configured`` holds (config_url, name, interval_s, interval_set): a ``name`` of None means
    the config names none, and the feed goes by its own title (its host until it has been read).
    Feeds no longer configured stay in the database (their articles are history) but are not
    returned by ``feeds(config_urls=...)`` for the current config. A renamed feed's articles take
    the new name (unless an item named its own outlet): one outlet is one source, before and
    after the rename.
    """
    known = {
        r.config_url: r
        for r in conn.execute(select(feeds.c.id, feeds.c.config_url, feeds.c.name, feeds.c.named, feeds.c.title, feeds.c.interval_s,
                                     feeds.c.interval_set))
    }
    for config_url, name, interval_s, interval_set in configured:
        row = known.get(config_url)
        if row is None:
            conn.execute(insert(feeds).values(config_url=config_url, url=config_url, name=name or host_of(config_url), named=int(name is not None),
                                              interval_s=interval_s, interval_set=int(interval_set), error_count=0))
            continue
        if not refresh:
            continue
        if name is not None:
            new_name = name
        elif row.named:  # the config stopped naming it: its own title, or its host
            new_name = outlet_name(row.title) or host_of(config_url)
        else:
            new_name = row.name
        if (row.name, bool(row.named), row.interval_s, bool(row.interval_set)) != (new_name, name is not None, interval_s, interval_set):
            conn.execute(update(feeds).where(feeds.c.id == row.id).values(name=new_name, named=int(name is not None), interval_s=interval_s,
                                                                          interval_set=int(interval_set)))
            rename_feed(conn, row.id, row.name, new_name)


def rename_feed(conn: Connection, feed_id: int, old: str, new: str) -> None:
    """The feed goes by ``new``, and so do the articles it stored under ``old``."""
    if old == new:
        return
    conn.execute(update(feeds).where(feeds.c.id == feed_id).values(name=new))
    conn.execute(update(articles).where(articles.c.feed_id == feed_id, articles.c.source == old).values(source=new))


SERVER_ASKED_TO_WAIT = ("HTTP 429", "HTTP 503")  # errors a config change does not cut short (their Retry-After stands)


def retry_failing(conn: Connection, config_urls: Sequence[str], now: datetime) -> int:
    """Feeds backing off after errors (not disabled, not told to wait by their server) become due
    at ``now``; returns how many."""
    result = conn.execute(
        update(feeds)
        .where(feeds.c.config_url.in_(list(config_urls)), feeds.c.error_count > 0, feeds.c.disabled_reason.is_(None),
               feeds.c.next_poll_at > now, feeds.c.last_error.not_in(SERVER_ASKED_TO_WAIT))
        .values(next_poll_at=now)
    )
    return int(result.rowcount or 0)


def all_feeds(conn: Connection, config_urls: Iterable[str] | None = None) -> list[FeedState]:
    """Stored feeds in id order (only those configured under ``config_urls``, when given)."""
    query = select(feeds).order_by(feeds.c.id)
    if config_urls is not None:
        query = query.where(feeds.c.config_url.in_(list(config_urls)))
    return [_feed_state(r) for r in conn.execute(query)]


def due_feeds(conn: Connection, now: datetime, limit: int, feed_ids: Sequence[int] | None = None) -> list[FeedState]:
    """Enabled feeds due at ``now`` with no answer waiting in the inbox, the longest due first, at
    most ``limit`` (a cluster's scheduler: a query, not a read of every feed); of ``feed_ids`` alone
    when given (workers' checks before they poll: one query for those that start together)."""
    waiting = select(inbox.c.id).where(inbox.c.feed_id == feeds.c.id).exists()
    query = select(feeds).where(feeds.c.disabled_reason.is_(None), (feeds.c.next_poll_at.is_(None)) | (feeds.c.next_poll_at <= now), ~waiting)
    if feed_ids is not None:
        query = query.where(feeds.c.id.in_(list(feed_ids)))
    return [_feed_state(r) for r in conn.execute(query.order_by(feeds.c.next_poll_at.nulls_first(), feeds.c.id).limit(limit))]


def feed(conn: Connection, feed_id: int) -> FeedState:
    """One feed's stored state."""
    row = conn.execute(select(feeds).where(feeds.c.id == feed_id)).first()
    if row is None:
        raise StorageError(f"no feed with id {feed_id}")
    return _feed_state(row)


def enable_feed(conn: Connection, url: str, now: datetime) -> bool:
    """Clear a feed's disabled reason and errors, due now; False when no feed has this
    address (as configured, or where it moved)."""
    result = conn.execute(
        update(feeds).where((feeds.c.config_url == url) | (feeds.c.url == url))
        .values(disabled_reason=None, error_count=0, last_error=None, next_poll_at=now)
    )
    return bool(result.rowcount)


def apply_feed_updates(conn: Connection, changes: Iterable[FeedChange]) -> None:
    """Feeds' new states, in order: (feed id, change, when, title, site URL), the last two only
    when the feed gave them. Consecutive updates setting the same columns run as one statement."""
    rows = ({"feed_id_": feed_id, **_feed_values(change, now, title, site_url)} for feed_id, change, now, title, site_url in changes)
    for _, run in itertools.groupby(rows, key=_columns):
        # SET from the parameters' keys, the id as a bound parameter: no statement built from literals
        conn.execute(_UPDATE_FEED, list(run))


def _feed_values(change: FeedUpdate, now: datetime, title: str | None, site_url: str | None) -> dict[str, Any]:
    """The feed columns an update sets."""
    values: dict[str, Any] = {
        "next_poll_at": change.next_poll_at,
        "error_count": change.error_count,
        "etag": change.etag,
        "last_modified": change.last_modified,
        "learned_interval_s": change.learned_interval_s,
    }
    if change.success:
        values.update(last_success_at=now, last_error=None)
    else:
        values.update(last_error=change.last_error, last_error_at=now)
    if change.disabled_reason:
        values["disabled_reason"] = change.disabled_reason
    if change.new_url:
        values["url"] = change.new_url
    if title:
        values["title"] = title
    if site_url:
        values["site_url"] = site_url
    return values


def _columns(values: dict[str, Any]) -> tuple[str, ...]:
    return tuple(values)


def _feed_state(row: Any) -> FeedState:
    return FeedState(
        id=row.id, url=row.url, name=row.name, interval_s=row.interval_s, etag=row.etag, last_modified=row.last_modified,
        next_poll_at=row.next_poll_at, error_count=row.error_count or 0, last_error=row.last_error,
        last_error_at=row.last_error_at, last_success_at=row.last_success_at, disabled_reason=row.disabled_reason,
        title=row.title, learned_interval_s=row.learned_interval_s, named=bool(row.named), interval_set=bool(row.interval_set),
        config_url=row.config_url,
    )
