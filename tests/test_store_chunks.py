"""The restart's read path: stored signatures in column chunks say what the row-by-row read says."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import numpy as np

from aggregator.core import Aggregator
from aggregator.feedserver import Response
from aggregator.store import _epoch_seconds

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
    agg = Aggregator(make_config([{"url": server.url("/feed.xml"), "name": "Gazette"}]), clock=lambda: NOW)
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


def test_stored_times_parse_alike_as_text_or_as_a_drivers_datetimes() -> None:
    naive = [datetime(2026, 11, 20, 12, 0, 0, 864000), datetime(1999, 12, 31, 23, 59, 59)]
    as_text = _epoch_seconds([str(d) for d in naive])
    as_datetimes = _epoch_seconds(naive)
    expected = [d.replace(tzinfo=timezone.utc).timestamp() for d in naive]
    assert as_text.tolist() == expected and as_datetimes.tolist() == expected
