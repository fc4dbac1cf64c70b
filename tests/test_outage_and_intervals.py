"""A global outage is not held against each feed; intervals follow each feed's posting rate and hints."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timedelta, timezone

from aggregator.config import ScheduleSettings
from aggregator.decide import after_success, cache_hint, posting_interval
from aggregator.factory import make_aggregator
from aggregator.models import Entry, FeedState, FetchResult, ParsedFeed
from aggregator.tools.feedserver import conditional

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
SCHED = ScheduleSettings(default_interval=900, min_interval=60, max_interval=86400, jitter=0, max_backoff=21600)


def closed_ports(n: int) -> list[int]:
    """Ports on 127.0.0.1 with nothing listening (bound, then released)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_when_every_feed_is_unreachable_the_errors_are_not_counted(make_config):
    feeds = [{"url": f"http://127.0.0.1:{p}/feed.xml", "name": f"f{i}", "interval": "15m"} for i, p in enumerate(closed_ports(12))]
    config = make_config(feeds, schedule={"jitter": 0})
    clock = [NOW]
    agg = make_aggregator(config, clock=lambda: clock[0])
    try:
        for _ in range(3):
            asyncio.run(agg.poll_round(clock[0], due_only=False))
            clock[0] += timedelta(minutes=20)
        states = agg.feeds()
    finally:
        agg.close()
    assert agg.network_outage()
    assert max(f.error_count for f in states) <= 1  # at most the polls before the outage was recognised
    assert sum("global network outage" in (f.last_error or "") for f in states) >= len(states) - 8
    # retried soon, not pushed out by exponential backoff
    assert all(f.next_poll_at and f.next_poll_at - clock[0] <= timedelta(minutes=15) for f in states)


def entries(hours_apart: float, count: int) -> tuple[Entry, ...]:
    return tuple(Entry(guid=str(i), url=None, title="t", text="", published=NOW - timedelta(hours=hours_apart * i))
                 for i in range(count))


def test_a_weekly_feed_is_not_polled_every_fifteen_minutes():
    feed = FeedState(id=1, url="http://example.org/f", name="f", interval_s=900)
    weekly = ParsedFeed(title=None, site_url=None, lang=None, entries=entries(24 * 7, 5))
    busy = ParsedFeed(title=None, site_url=None, lang=None, entries=entries(0.1, 20))
    result = FetchResult(url=feed.url, final_url=feed.url, status=200, content=b"")
    assert posting_interval(weekly, NOW) == 24 * 7 * 3600 / 2
    slow = after_success(feed, result, weekly, NOW, SCHED)
    assert slow.next_poll_at - NOW == timedelta(days=1)  # half the posting gap, capped at max_interval
    assert slow.learned_interval_s == 24 * 7 * 3600 // 2
    fast = after_success(feed, result, busy, NOW, SCHED)
    assert fast.next_poll_at - NOW == timedelta(minutes=15)  # never faster than configured
    # a 304 keeps what the feed taught us
    learned = FeedState(id=1, url=feed.url, name="f", interval_s=900, learned_interval_s=7200)
    not_modified = FetchResult(url=feed.url, final_url=feed.url, status=304, content=b"")
    assert after_success(learned, not_modified, None, NOW, SCHED).next_poll_at - NOW == timedelta(hours=2)


def test_cache_control_and_expires_are_honoured():
    assert cache_hint({"cache-control": "public, max-age=3600"}, NOW) == 3600
    assert cache_hint({"expires": "Fri, 20 Nov 2026 14:00:00 GMT"}, NOW) == 7200
    assert cache_hint({"cache-control": "no-cache"}, NOW) is None
    feed = FeedState(id=1, url="http://example.org/f", name="f", interval_s=900)
    result = FetchResult(url=feed.url, final_url=feed.url, status=200, content=b"", headers={"cache-control": "max-age=5400"})
    parsed = ParsedFeed(title=None, site_url=None, lang=None, entries=())
    assert after_success(feed, result, parsed, NOW, SCHED).next_poll_at - NOW == timedelta(minutes=90)


def test_a_round_of_unchanged_feeds_records_every_feed(make_config, server, routes):
    """Feed states after 304s are written in groups: every feed of the round still gets its own."""
    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>Strike in Idlib</title>'
            b"<guid>a1</guid><description>At least 12 people were killed, monitors said.</description></item></channel></rss>")
    for i in range(8):
        routes[f"/feed{i}.xml"] = lambda request: conditional(request, body, "application/rss+xml")
    feeds = [{"url": server.url(f"/feed{i}.xml"), "name": f"f{i}", "interval": "15m"} for i in range(8)]
    clock = [NOW]
    agg = make_aggregator(make_config(feeds, schedule={"jitter": 0}), clock=lambda: clock[0])
    try:
        first = asyncio.run(agg.poll_round(clock[0], due_only=False))
        clock[0] += timedelta(minutes=20)
        second = asyncio.run(agg.poll_round(clock[0], due_only=False))
        states = agg.feeds()
    finally:
        agg.close()
    assert [r.status for r in first] == [200] * 8 and all(r.not_modified for r in second)
    assert all(f.last_success_at == clock[0] and f.etag and f.error_count == 0 for f in states)
    assert all(f.next_poll_at is not None and f.next_poll_at > clock[0] for f in states)
