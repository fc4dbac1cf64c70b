"""End to end: the real daemon as a subprocess against feeds on 127.0.0.1 (the other commands run in this process)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.tools.demo import article_path
from helpers import aggregator, cli, count, demo_site, wait_for, write_config

OUTLETS = ["globalwire", "meridian", "dailyherald", "northstar", "citizen"]
DEADLINE_S = 60


def start_daemon(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "aggregator", "-v", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    return proc.returncode, stderr


@pytest.fixture
def demo_feeds(tmp_path: Path):
    with demo_site() as (server, site):
        corpus = site.corpus
        feeds = [{"url": server.url(f"/feeds/{slug}.xml"), "name": corpus.outlet(slug).name, "interval": "30m"} for slug in OUTLETS]
        config = write_config(tmp_path, feeds)
        expected = {server.url(article_path(a)): a.event for a in corpus.articles if a.outlet in OUTLETS}
        yield server, config, expected


def test_daemon_polls_clusters_and_restarts_without_duplicates(demo_feeds, tmp_path):
    server, config, expected = demo_feeds
    db = tmp_path / "aggregator.db"
    offered = Counter(expected.values())

    daemon = start_daemon(config)
    try:
        wait_for(lambda: count(db, "articles") >= len(expected), "the daemon to store every offered article")
        time.sleep(0.5)
    finally:
        code, stderr = stop(daemon)
    assert code == 0, stderr
    assert "daemon stopped" in stderr

    listed = cli("clusters", "--config", str(config), "--since", "4d", "--json")
    assert listed.returncode == 0, listed.stderr
    stories = json.loads(listed.stdout)
    story_of = {v["url"]: s["id"] for s in stories for v in s["variants"]}
    assert set(story_of) == set(expected), "every article offered is listed exactly once"

    # The seed story, reported by every outlet here, is one story; the other Idlib strike two days later is not in it.
    idlib_a = {story_of[u] for u, e in expected.items() if e == "idlib-strike-a" and "/echo/" not in u}
    idlib_b = {story_of[u] for u, e in expected.items() if e == "idlib-strike-b"}
    assert len(idlib_a) == 1 and offered["idlib-strike-a"] >= 4
    assert not idlib_a & idlib_b
    biggest = max(stories, key=lambda s: s["source_count"])
    assert biggest["source_count"] >= 4 and biggest["first_source"] in biggest["sources"]

    # Restart: due times come from the database, so nothing is polled again yet and nothing is duplicated.
    requests_before = len(server.requests)
    articles_before, members_before = count(db, "articles"), count(db, "story_members")
    daemon = start_daemon(config)
    try:
        wait_for(lambda: "daemon started" in (daemon.stderr.readline() if daemon.stderr else ""), "the second start")
        time.sleep(1.5)
    finally:
        code, stderr = stop(daemon)
    assert code == 0, stderr
    assert len(server.requests) == requests_before, "a restart must not re-poll feeds that are not due"
    assert (count(db, "articles"), count(db, "story_members")) == (articles_before, members_before)


def test_poll_round_uses_conditional_get_and_stores_nothing_twice(demo_feeds, tmp_path):
    server, config, expected = demo_feeds
    db = tmp_path / "aggregator.db"
    first = cli("poll", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert count(db, "articles") == len(expected)
    stories_before = count(db, "stories")

    feed_requests_before = sum(1 for r in server.requests if r.path.startswith("/feeds/"))
    second = cli("poll", "--all", "--config", str(config))
    assert second.returncode == 0, second.stderr
    assert "not modified" in second.stdout
    again = [r for r in server.requests if r.path.startswith("/feeds/")][feed_requests_before:]
    assert len(again) == len(OUTLETS) and all("if-none-match" in r.headers for r in again)
    assert count(db, "articles") == len(expected) and count(db, "stories") == stories_before

    # a plain `poll` right after respects the schedule: nothing is due
    assert "0 feed(s) polled" in cli("poll", "--config", str(config)).stdout


def test_second_daemon_or_a_manual_poll_on_same_storage_refuses(demo_feeds, tmp_path):
    _, config, _ = demo_feeds
    daemon = start_daemon(config)
    try:
        wait_for(lambda: count(tmp_path / "aggregator.db", "feeds") > 0, "the first daemon")  # (it takes the lock before it writes)
        second = aggregator("run", "--config", str(config), timeout=30)
        assert second.returncode == 3
        assert "already running" in second.stderr and "Traceback" not in second.stderr
        # A manual poll would store articles the daemon's in-memory index never sees (and split stories).
        manual = cli("poll", "--all", "--config", str(config))  # (in this process: the lock is the daemon process's)
        assert manual.returncode == 3 and "daemon owns this storage" in manual.stderr and "Traceback" not in manual.stderr
    finally:
        stop(daemon)


def test_housekeeping_logs_what_left_the_window_and_the_decay_it_learned(server, routes, make_config, caplog) -> None:
    import asyncio
    import logging
    from email.utils import format_datetime

    from aggregator.factory import make_aggregator
    from aggregator.schedule import Daemon
    from aggregator.tools.feedserver import Response

    now = [datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)]
    items = "".join(
        f"<item><title>{title}</title><guid>h{i}</guid><pubDate>{format_datetime(now[0] - timedelta(hours=i + 1), usegmt=True)}</pubDate>"
        f"<description>{title}: the full report of the day, told in a few plain sentences.</description></item>"
        for i, title in enumerate(["Harbour wall approved", "Ferry runs aground", "Library opens on Sundays"])
    )
    routes["/feed.xml"] = Response(200, f'<?xml version="1.0"?><rss version="2.0"><channel><title>G</title>{items}</channel></rss>'.encode(),
                                   {"Content-Type": "application/rss+xml"})
    agg = make_aggregator(make_config([{"url": server.url("/feed.xml"), "name": "Gazette"}], extract={"fetch_pages": False}), clock=lambda: now[0])
    try:
        [report] = asyncio.run(agg.poll_round(due_only=False))
        assert report.new_articles == 3
        now[0] += timedelta(days=4)
        with caplog.at_level(logging.INFO, logger="aggregator"):
            asyncio.run(Daemon(agg)._housekeeping())
    finally:
        agg.close()
    assert "forgot 3 old article(s) (still in the database); time decay 0.04 per day" in caplog.text
