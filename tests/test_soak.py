"""Soak: 500 feeds over a fast-forwarded simulated day, 10% misbehaving in rotating ways.

The clock is the only fake (time-machine); HTTP, parsing, dedup and SQLite are real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import time_machine

from aggregator.config import load_config
from aggregator.factory import make_aggregator
from aggregator.tools.feedserver import LoopbackServer, Request, Response, conditional
from helpers import cli, write_config

FEEDS = 500
BAD_EVERY = 10  # every 10th feed misbehaves
START = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)
STEP = timedelta(minutes=10)
HOURS = 24
TOPICS = ["harbour", "council", "railway", "hospital", "festival", "museum", "bridge", "school", "airport", "stadium"]
BEHAVIOURS = ["500", "404", "slow", "garbage", "429", "html", "ok"]


def rss(feed: int, now: datetime) -> bytes:
    # each feed posts every 4 hours (staggered), and lists its last 5 posts
    posts = [h for h in range(0, int((now - START).total_seconds() // 3600) + 1) if (h + feed) % 4 == 0][-5:]
    items = "".join(
        f"<item><title>{TOPICS[(feed + h) % 10].title()} news {feed}-{h}</title><link>http://127.0.0.1/a/{feed}/{h}</link>"
        f"<pubDate>{format_datetime(START + timedelta(hours=h), usegmt=True)}</pubDate>"
        f"<description>Report {feed}-{h} about the {TOPICS[(feed + h) % 10]} in district {feed} with figure {h * 7 + feed}.</description></item>"
        for h in posts
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {feed}</title>{items}</channel></rss>'.encode()


def handler(request: Request) -> Response:
    now = datetime.now(timezone.utc)  # the travelled clock
    feed = int(request.path.strip("/").split(".")[0])
    if feed % BAD_EVERY == 0:
        behaviour = BEHAVIOURS[(feed // BAD_EVERY + int((now - START).total_seconds() // 3600)) % len(BEHAVIOURS)]
        if behaviour == "500":
            return Response(500, b"internal error")
        if behaviour == "404":
            return Response(404, b"missing")
        if behaviour == "slow":
            time.sleep(4)  # beyond the 3 s deadline (monotonic time is real)
        if behaviour == "garbage":
            return Response(200, b"\x00\xff<rss><channel><item><title>broken", {"Content-Type": "application/rss+xml"})
        if behaviour == "429":
            return Response(429, b"", {"Retry-After": "1800"})
        if behaviour == "html":
            return Response(200, b"<!DOCTYPE html><html><body>maintenance</body></html>", {"Content-Type": "text/html"})
    return conditional(request, rss(feed, now), "application/rss+xml")


def rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4


@pytest.fixture
def quiet_logs():
    # thousands of expected per-feed warnings would otherwise pile up in pytest's log capture
    logger = logging.getLogger("aggregator")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.mark.slow
def test_a_day_of_500_feeds_with_misbehaving_ones(tmp_path, quiet_logs):
    with LoopbackServer(handler) as server, time_machine.travel(START, tick=False) as traveller:
        feeds = [{"url": server.url(f"/{i}.xml"), "name": f"feed {i}", "interval": "1h"} for i in range(FEEDS)]
        path = write_config(tmp_path, feeds, fetch={"total_deadline": "3s", "per_host_concurrency": 16, "max_concurrency": 32},
                            extract={"fetch_pages": False}, schedule={"max_backoff": "2h"})
        agg = make_aggregator(load_config(path))
        memory: dict[int, int] = {}
        now = START
        try:
            while now < START + timedelta(hours=HOURS):
                asyncio.run(agg.poll_round(now))
                if (now - START) % timedelta(hours=6) == timedelta(0):
                    memory[int((now - START).total_seconds() // 3600)] = rss_kib()
                now += STEP
                traveller.move_to(now)
            states = agg.feeds()
        finally:
            agg.close()

    # memory stays flat after warm-up (6 h) to the end of the day
    assert memory[18] - memory[6] < 40 * 1024, memory

    # no feed is stuck: every feed was polled recently and is due again soon
    for f in states:
        assert f.disabled_reason is None
        assert f.next_poll_at is not None and f.next_poll_at <= now + timedelta(hours=2, minutes=15), f
    # (a feed is stuck if it was not even attempted within max_backoff + interval + one step)
    stale = [(f.name, f.last_success_at, f.last_error_at) for f in states
             if now - max(t for t in (f.last_success_at, f.last_error_at, START) if t) > timedelta(hours=3, minutes=10)]
    assert not stale, stale[:5]
    good = [f for i, f in enumerate(states) if i % BAD_EVERY]
    # a well-behaved feed may hit a transient timeout on this shared machine, but almost all end the day clean
    assert sum(f.error_count == 0 for f in good) >= 0.95 * len(good)
    assert all(f.last_success_at for f in good)

    # the error view shows each bad feed with its last error
    bad = [f for i, f in enumerate(states) if i % BAD_EVERY == 0]
    assert all(f.last_error for f in bad if f.error_count)
    assert sum(1 for f in bad if f.error_count) >= len(bad) // 2
    listed = cli("feeds", "--json", "--config", str(path))
    view = {row["name"]: row for row in json.loads(listed.stdout)}
    for f in bad:
        assert view[f.name]["last_error"] == f.last_error
        assert view[f.name]["health"].startswith("backing off" if f.error_count else "ok")
