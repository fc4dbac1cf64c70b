"""The restart's read path: stored signatures in column chunks say what the row-by-row read says;
grouped feed-state writes; answers left in the inbox together."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import numpy as np

from aggregator.factory import make_aggregator
from aggregator.store.articles import _epoch_seconds
from aggregator.tools.feedserver import Response

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def test_signature_chunks_match_the_row_by_row_read(server, routes, make_config) -> None:
    items = "".join(
        f"<item><title>Harbour report {i}: ferry number {i} delayed</title><guid>g{i}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=30 - 3 * i, minutes=7 * i), usegmt=True)}</pubDate>"
        f"<description>The harbour authority said ferry {i} was delayed by storms and repairs, day {i}.</description></item>"
        for i in range(8)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Gazette</title>{items}</channel></rss>'.encode()
    routes["/feed.xml"] = Response(200, body, {"Content-Type": "application/rss+xml"})
    agg = make_aggregator(make_config([{"url": server.url("/feed.xml"), "name": "Gazette"}]), clock=lambda: NOW)
    try:
        asyncio.run(agg.poll_round(due_only=False))
        since = NOW - timedelta(hours=20)
        rows = list(agg.store.signatures(since=since))
        chunks = list(agg.store.signature_chunks(since=since, size=3))
    finally:
        agg.close()
    assert 3 < len(rows) < 8  # the window cut some
    assert [len(c.article_ids) for c in chunks] == [3] * (len(rows) // 3) + ([len(rows) % 3] if len(rows) % 3 else [])
    assert np.concatenate([c.article_ids for c in chunks]).tolist() == [r.article_id for r in rows]
    assert np.concatenate([c.story_ids for c in chunks]).tolist() == [r.story_id for r in rows]
    assert np.concatenate([c.published for c in chunks]).tolist() == [r.published_at.timestamp() for r in rows]
    assert [d for c in chunks for d in c.data] == [r.data for r in rows]
    assert [s for c in chunks for s in c.sources] == [r.source for r in rows]
    assert np.concatenate([c.first_seen for c in chunks]).tolist() == [r.first_seen_at.timestamp() for r in rows] == [NOW.timestamp()] * len(rows)
    lengths = np.concatenate([c.text_lengths for c in chunks]).tolist()
    assert lengths == [r.text_length for r in rows] and all(n > 60 for n in lengths)  # what the canonical rule compares


def test_stored_times_parse_alike_as_text_or_as_a_drivers_datetimes() -> None:
    naive = [datetime(2026, 11, 20, 12, 0, 0, 864000), datetime(1999, 12, 31, 23, 59, 59)]
    as_text = _epoch_seconds([str(d) for d in naive])
    as_datetimes = _epoch_seconds(naive)
    expected = [d.replace(tzinfo=timezone.utc).timestamp() for d in naive]
    assert as_text.tolist() == expected and as_datetimes.tolist() == expected


def test_grouped_feed_updates_apply_in_order(tmp_path) -> None:
    """Feed-state writes are grouped into one statement per run of updates setting the same
    columns; each feed still ends in the state its last update gave it."""
    from aggregator.models import FeedUpdate
    from aggregator.store import Store

    store = Store(f"sqlite:///{tmp_path / 'feeds.sqlite'}")
    try:
        store.sync_feeds([(f"http://127.0.0.1/{i}.xml", f"Feed {i}", 600, True) for i in range(4)])
        ids = [f.id for f in store.feeds()]
        ok = FeedUpdate(NOW + timedelta(minutes=10), 0, None, '"v1"', None, success=True)
        failed = FeedUpdate(NOW + timedelta(minutes=30), 1, "HTTP 503", None, None, success=False)
        gone = FeedUpdate(NOW + timedelta(days=1), 2, "HTTP 410", None, None, success=False, disabled_reason="gone (HTTP 410)")
        with store.transaction() as tx:
            tx.apply_feed_updates([
                (ids[1], ok, NOW, None, None),
                (ids[0], failed, NOW, None, None),
                (ids[0], ok, NOW + timedelta(minutes=1), None, None),  # the same feed again: this one is its state
                (ids[2], ok, NOW, None, None),
                (ids[2], gone, NOW + timedelta(minutes=1), None, None),
                (ids[3], ok, NOW, "Title 3", "http://127.0.0.1/"),
            ])
        state = {f.id: f for f in store.feeds()}
    finally:
        store.close()
    assert (state[ids[0]].etag, state[ids[0]].error_count, state[ids[0]].last_error) == ('"v1"', 0, None)
    assert state[ids[0]].next_poll_at == NOW + timedelta(minutes=10)
    assert (state[ids[1]].etag, state[ids[1]].error_count, state[ids[1]].title) == ('"v1"', 0, None)
    assert state[ids[2]].disabled_reason == "gone (HTTP 410)" and state[ids[2]].etag is None
    assert (state[ids[3]].etag, state[ids[3]].title) == ('"v1"', "Title 3")


def test_read_ahead_runs_the_reader_in_its_own_thread_and_stops_it_with_the_caller() -> None:
    """A restart's chunks are read in a thread while the index takes in the last one: the reader
    (which holds a database connection) runs and ends in that thread, whether the caller reads
    to the end, stops early, or the reader fails."""
    import threading

    import pytest

    from aggregator.readahead import read_ahead

    seen: list[str] = []

    def reader(n: int, fail_at: int | None = None):
        seen.append(threading.current_thread().name)
        try:
            for i in range(n):
                if i == fail_at:
                    raise OSError("the database went away")
                yield i
        finally:
            seen.append(f"closed in {threading.current_thread().name}")

    assert list(read_ahead(reader(50), depth=2)) == list(range(50))
    assert seen == ["read-ahead", "closed in read-ahead"]

    seen.clear()
    early = read_ahead(reader(10_000), depth=2)
    assert [next(early) for _ in range(3)] == [0, 1, 2]
    early.close()  # the caller stops: the reader is closed in its thread, not left waiting on a full queue
    assert seen == ["read-ahead", "closed in read-ahead"]
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]

    seen.clear()
    with pytest.raises(OSError, match="went away"):
        list(read_ahead(reader(10, fail_at=4)))
    assert seen == ["read-ahead", "closed in read-ahead"]


def test_answers_left_together_keep_their_order_in_the_inbox(server, routes, make_config) -> None:
    routes["/feed.xml"] = Response(200, b'<?xml version="1.0"?><rss version="2.0"><channel><title>G</title></channel></rss>',
                                   {"Content-Type": "application/rss+xml"})
    agg = make_aggregator(make_config([{"url": server.url("/feed.xml"), "name": "Gazette"}]), clock=lambda: NOW)
    try:
        feed = agg.store.feeds()[0]
        first = agg.store.put_inbox([(feed.id, 1, b"one")], NOW)
        more = agg.store.put_inbox([(feed.id, 2, b"two"), (feed.id, 0, b"three"), (feed.id, 5, b"four")], NOW)
        assert agg.store.put_inbox([], NOW) == []
        assert len(first) == 1 and len(more) == 3 and first[0] < more[0] < more[1] < more[2]
        assert agg.store.take_inbox(10) == [(first[0], b"one"), *zip(more, [b"two", b"three", b"four"], strict=True)]
        assert agg.store.inbox_backlog()[:2] == (4, 8)
    finally:
        agg.close()
