"""A first source that cannot be faked (issue 18), on real feeds polled from 127.0.0.1: a date far
earlier than the item was first seen does not make it first, an article URL goes to the outlet
whose site serves it, and a story first seen today is today's whatever its dates say."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.factory import make_aggregator, open_library
from aggregator.models import Story
from aggregator.tools.feedserver import Response
from helpers import cli, write_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STRIKE = ("A government missile strike killed at least 12 people in a village in Idlib province early on Tuesday, the Syrian "
          "Observatory for Human Rights said, in one of the deadliest attacks on the rebel-held region this year. Rescuers pulled "
          "bodies from the rubble of two houses, and the monitor said children were among the dead.")
FERRY = ("The harbour authority opened the new ferry terminal on Monday after three years of building work, promising shorter "
         "queues and a second daily crossing to the islands from the spring timetable onwards.")
FLOOD = ("River levels in the northern valley rose above the record set in 1998 on Sunday night, forcing the evacuation of two "
         "villages and closing the main road to the coast while engineers checked the old stone bridge for damage.")

Item = tuple[str, str, str, str, "datetime | None"]  # guid, link, title, description, published (None: no date)


def rss(title: str, site: str | None, items: list[Item]) -> bytes:
    head = f"<title>{title}</title>" + (f"<link>{site}</link>" if site else "")
    body = "".join(
        f"<item><guid>{guid}</guid><title>{t}</title><link>{link}</link><description>{d}</description>"
        + (f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>" if when else "") + "</item>"
        for guid, link, t, d, when in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{head}{body}</channel></rss>'.encode()


def serve(routes, path: str, body: bytes) -> None:
    routes[path] = Response(200, body, {"Content-Type": "application/rss+xml"})


def configure(tmp_path: Path, server, feeds: list[tuple[str, str]], fetch_pages: bool = False) -> Path:
    return write_config(tmp_path, [{"url": server.url(p), "name": n} for p, n in feeds], timezone="UTC",
                        extract={"fetch_pages": fetch_pages}, schedule={"jitter": 0})


def poll(config: Path, now: datetime) -> None:
    agg = make_aggregator(load_config(config), clock=lambda: now)
    try:
        reports = asyncio.run(agg.poll_round(now, due_only=False))
        assert all(r.error is None for r in reports), reports
    finally:
        agg.close()


def stories(config: Path, start: datetime, end: datetime) -> list[Story]:
    lib = open_library(load_config(config))
    try:
        return lib.stories_between(start, end)
    finally:
        lib.close()


def the_story(config: Path, word: str) -> Story:
    found = [s for s in stories(config, NOW - timedelta(days=5), NOW + timedelta(days=1)) if any(word in v.title for v in s.variants)]
    assert len(found) == 1, found
    return found[0]


# -- (a) a date far in the past, or none, does not make an item first --------------------------------------------------


@pytest.mark.parametrize("hostile_is_new", [False, True], ids=["established-feed", "brand-new-feed"])
def test_a_backdated_copy_does_not_take_first_reported_from_the_honest_first_reporter(tmp_path, server, routes, hostile_is_new) -> None:
    serve(routes, "/wire.xml", rss("Wire", "http://wire.test/", [("w1", "http://wire.test/1", "Strike kills 12 in Idlib", STRIKE,
                                                                   NOW - timedelta(minutes=20))]))
    serve(routes, "/copier.xml", rss("Copier", "http://copier.test/", [("c0", "http://copier.test/0", "Ferry terminal opens", FERRY,
                                                                        NOW - timedelta(minutes=40))]))
    first = [("/wire.xml", "Wire")] + ([] if hostile_is_new else [("/copier.xml", "Copier")])
    poll(configure(tmp_path, server, first), NOW)

    later = NOW + timedelta(minutes=30)
    backdated = NOW - timedelta(hours=30)  # inside the dedup window: the copy joins the wire's story
    serve(routes, "/copier.xml", rss("Copier", "http://copier.test/", [("c1", "http://copier.test/1", "Idlib strike kills 12", STRIKE, backdated)]))
    config = configure(tmp_path, server, [("/wire.xml", "Wire"), ("/copier.xml", "Copier")])
    poll(config, later)

    story = the_story(config, "Idlib")
    assert sorted(v.source for v in story.variants) == ["Copier", "Wire"]  # one story: the copy did join it
    assert story.first_source == "Wire" and story.first_reported_at == NOW - timedelta(minutes=20)
    assert story.canonical.source == "Wire"
    copy = next(v for v in story.variants if v.source == "Copier")
    assert copy.published_at == backdated and copy.first_seen_at == later  # the feed's date is kept, for display

    # and it stays so after a restart (the index is rebuilt from storage) when a third report joins
    serve(routes, "/radio.xml", rss("Radio", "http://radio.test/", [("r1", "http://radio.test/1", "Twelve dead in Idlib strike",
                                                                     STRIKE + " Video showed flattened homes.", later + timedelta(minutes=5))]))
    config = configure(tmp_path, server, [("/wire.xml", "Wire"), ("/copier.xml", "Copier"), ("/radio.xml", "Radio")])
    poll(config, later + timedelta(minutes=20))
    story = the_story(config, "Idlib")
    assert len(story.variants) == 3 and story.first_source == "Wire" and story.canonical.source == "Wire"
    assert story.first_reported_at == NOW - timedelta(minutes=20)


def test_an_undated_item_is_dated_when_first_seen_not_by_its_pages_stale_metadata(tmp_path, server, routes) -> None:
    serve(routes, "/wire.xml", rss("Wire", "http://wire.test/", [("w1", "http://wire.test/1", "Strike kills 12 in Idlib", STRIKE,
                                                                   NOW - timedelta(minutes=20))]))
    poll(configure(tmp_path, server, [("/wire.xml", "Wire")]), NOW)

    later = NOW + timedelta(minutes=30)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Idlib strike</title>'
            f'<meta property="article:published_time" content="{(NOW - timedelta(days=2)).isoformat()}"></head>'
            f"<body><main><article><h1>Idlib strike kills 12</h1><p>{STRIKE}</p></article></main></body></html>").encode()
    routes["/copied-page"] = Response(200, page, {"Content-Type": "text/html; charset=utf-8"})
    serve(routes, "/copier.xml", rss("Copier", None, [("c1", server.url("/copied-page"), "Idlib strike kills 12", "A strike.", None)]))
    config = configure(tmp_path, server, [("/wire.xml", "Wire"), ("/copier.xml", "Copier")], fetch_pages=True)
    poll(config, later)

    story = the_story(config, "Idlib")
    assert sorted(v.source for v in story.variants) == ["Copier", "Wire"]
    copy = next(v for v in story.variants if v.source == "Copier")
    assert copy.published_at == later  # not the page's "two days ago"
    assert story.first_source == "Wire" and story.canonical.source == "Wire" and story.first_reported_at == NOW - timedelta(minutes=20)


def test_a_new_databases_first_poll_keeps_the_feeds_dates(tmp_path, server, routes) -> None:
    """A real new subscription: nothing was seen before, so the backlog's dates stand, and the
    earlier report is first, whichever feed answers first."""
    serve(routes, "/a.xml", rss("Gazette", "http://gazette.test/", [("a1", "http://gazette.test/1", "Idlib strike kills 12", STRIKE,
                                                                      NOW - timedelta(hours=2))]))
    serve(routes, "/b.xml", rss("Radio", "http://radio.test/", [("b1", "http://radio.test/1", "Strike in Idlib", STRIKE + " Funerals followed.",
                                                                  NOW - timedelta(hours=5))]))
    config = configure(tmp_path, server, [("/a.xml", "Gazette"), ("/b.xml", "Radio")])
    poll(config, NOW)
    story = the_story(config, "Idlib")
    assert story.first_source == "Radio" and story.first_reported_at == NOW - timedelta(hours=5)


# -- (b) an article URL belongs to the outlet whose site serves it ------------------------------------------------------


def outlet_items() -> list[Item]:
    return [("o1", "http://outlet.test/news/strike", "Strike kills 12 in Idlib", STRIKE, NOW - timedelta(hours=1)),
            ("o2", "http://www.outlet.test/news/ferry", "Ferry terminal opens", FERRY, NOW - timedelta(hours=2)),
            ("o3", "http://outlet.test/news/flood", "Flood closes coast road", FLOOD, NOW - timedelta(hours=3))]


def sources_by_url(config: Path) -> dict[str, str]:
    return {v.url or "": v.source for s in stories(config, NOW - timedelta(days=2), NOW + timedelta(days=1)) for v in s.variants}


@pytest.mark.parametrize("same_round", [False, True], ids=["thief-polled-first", "same-round"])
def test_a_feed_listing_another_outlets_urls_first_does_not_take_its_articles(tmp_path, server, routes, same_round) -> None:
    # the thief lists the outlet's URLs (dated a little earlier, so they come first in a round) as its own items
    stolen = [(f"t{i}", link, title, text, when - timedelta(minutes=5)) for i, (_g, link, title, text, when) in enumerate(outlet_items())]
    serve(routes, "/thief.xml", rss("Thief", "http://thief.test/", stolen))
    serve(routes, "/outlet.xml", rss("Outlet", "http://www.outlet.test/", outlet_items()))
    if not same_round:
        poll(configure(tmp_path, server, [("/thief.xml", "Thief")]), NOW)
        assert set(sources_by_url(configure(tmp_path, server, [("/thief.xml", "Thief")])).values()) == {"Thief"}
    config = configure(tmp_path, server, [("/thief.xml", "Thief"), ("/outlet.xml", "Outlet")])
    poll(config, NOW + timedelta(minutes=15))
    expected = {link: "Outlet" for _g, link, *_ in outlet_items()}
    assert sources_by_url(config) == expected  # all three are the outlet's, each stored once

    # the thief's next poll changes nothing, and the outlet's own feed knows its entries
    poll(config, NOW + timedelta(minutes=45))
    assert sources_by_url(config) == expected
    lib = open_library(load_config(config))
    try:
        counts = lib.store.counts()
    finally:
        lib.close()
    assert counts["articles"] == 3


def test_an_aggregators_own_articles_stay_its_own(tmp_path, server, routes) -> None:
    """A feed whose site does not serve a URL keeps it when no feed whose site does lists it."""
    serve(routes, "/agg.xml", rss("Aggregator", "http://agg.test/", [("g1", "http://elsewhere.test/a", "Strike kills 12 in Idlib", STRIKE,
                                                                        NOW - timedelta(hours=1))]))
    serve(routes, "/other.xml", rss("Other", "http://other.test/", [("x1", "http://elsewhere.test/a", "Strike kills 12 in Idlib", STRIKE,
                                                                      NOW - timedelta(minutes=50))]))
    config = configure(tmp_path, server, [("/agg.xml", "Aggregator")])
    poll(config, NOW)
    config = configure(tmp_path, server, [("/agg.xml", "Aggregator"), ("/other.xml", "Other")])
    poll(config, NOW + timedelta(minutes=15))
    assert sources_by_url(config) == {"http://elsewhere.test/a": "Aggregator"}  # first listed, as before


@pytest.mark.parametrize("same_round", [False, True], ids=["thief-polled-first", "same-round"])
def test_an_aggregator_naming_the_outlet_as_its_source_holds_the_articles_for_it(tmp_path, server, routes, same_round) -> None:
    """An aggregator's item with ``<source url="...">Outlet</source>`` says which site serves the article:
    a feed listing the same URL without being that site does not take it, and it goes by the outlet's name."""
    stolen = [(f"t{i}", link, title, text, when - timedelta(minutes=5)) for i, (_g, link, title, text, when) in enumerate(outlet_items())]
    serve(routes, "/thief.xml", rss("Thief", "http://thief.test/", stolen))
    named = rss("Aggregator", "http://agg.test/", outlet_items()).replace(
        b"</link><description>", b'</link><source url="http://www.outlet.test/rss">Outlet Daily</source><description>')
    serve(routes, "/agg.xml", named)
    if not same_round:
        poll(configure(tmp_path, server, [("/thief.xml", "Thief")]), NOW)
    config = configure(tmp_path, server, [("/thief.xml", "Thief"), ("/agg.xml", "Aggregator")])
    poll(config, NOW + timedelta(minutes=15))
    assert sources_by_url(config) == {link: "Outlet Daily" for _g, link, *_ in outlet_items()}


# -- (c) a story first seen today is today's -----------------------------------------------------------------------------


def test_a_story_first_seen_today_with_old_dates_is_in_todays_clusters_and_digest(tmp_path, server, routes) -> None:
    old = NOW - timedelta(days=3)
    serve(routes, "/a.xml", rss("Gazette", "http://gazette.test/", [("a1", "http://gazette.test/1", "Flood closes coast road", FLOOD, old)]))
    serve(routes, "/b.xml", rss("Radio", "http://radio.test/", [("b1", "http://radio.test/1", "Valley flood closes road", FLOOD + " More rain is due.",
                                                                  old + timedelta(hours=1))]))
    config = configure(tmp_path, server, [("/a.xml", "Gazette"), ("/b.xml", "Radio")])
    poll(config, NOW)

    today = NOW.date().isoformat()
    listed = json.loads(cli("clusters", "-c", str(config), "--date", today, "--json").stdout)
    assert [s["title"] for s in listed] == ["Flood closes coast road"] and listed[0]["source_count"] == 2
    assert json.loads(cli("clusters", "-c", str(config), "--date", old.date().isoformat(), "--json").stdout)  # its dates' day still lists it
    assert cli("digest", "-c", str(config), "--date", today).returncode == 0
    assert "Flood closes coast road" in (tmp_path / "digests" / f"{today}.md").read_text(encoding="utf-8")
    # a day with no activity does not list it
    assert json.loads(cli("clusters", "-c", str(config), "--date", (NOW - timedelta(days=1)).date().isoformat(), "--json").stdout) == []
