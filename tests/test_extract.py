"""Article pages: the text trafilatura finds, and the metadata pass that runs only when the feed
leaves the title or the date to the page."""

from __future__ import annotations

import asyncio
import html
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from aggregator.extract import extract_page
from aggregator.factory import make_aggregator
from aggregator.tools.demo import load_corpus, render_page
from aggregator.tools.feedserver import Response

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def test_skipping_the_metadata_pass_keeps_the_text() -> None:
    """The pipeline's call for a dated, titled entry finds the same text on every demo page, and
    drops the same leading title, as the full extraction."""
    corpus = load_corpus()
    for k, article in enumerate(corpus.articles[:40]):
        page = render_page(corpus.outlet(article.outlet), article, NOW - timedelta(hours=k))
        url = f"http://127.0.0.1/{k}"
        full = extract_page(page, url, fast=True)
        lean = extract_page(page, url, fast=True, known_title=article.title)
        assert full is not None and lean is not None
        assert lean.text == full.text, article.id
        assert full.published is not None and full.title  # the full pass reads the page's metadata
        assert lean.published is None and lean.title is None  # the lean one does not look


def _feed(base: str, dated: bool) -> bytes:
    date = f"<pubDate>{format_datetime(NOW - timedelta(hours=5), usegmt=True)}</pubDate>" if dated else ""
    item = (f"<item><title>Ferry terminal opens after delays</title><link>{base}/story</link>"
            f"<guid>story</guid>{date}<description>Short teaser.</description></item>")
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Gazette</title>{item}</channel></rss>'.encode()


def _page(published: datetime) -> bytes:
    paragraphs = "".join(
        f"<p>{html.escape(p)}</p>" for p in [
            "The harbour authority said the new ferry terminal will open in March after two years of delays.",
            "Officials blamed cost overruns on steel prices and a contractor that went bankrupt in 2024.",
            "Commuters who cross the bay every day said the old terminal had become unsafe in winter storms.",
            "The first crossings from the new pier are planned for the first Monday of the month, the authority said.",
        ]
    )
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Ferry terminal | Gazette</title>'
            f'<meta property="article:published_time" content="{published.isoformat()}"></head><body><main><article>'
            f"<h1>Ferry terminal opens after delays</h1>{paragraphs}</article></main></body></html>").encode()


def _poll_one(server, routes, make_config, dated: bool) -> tuple[datetime, str]:
    page_date = NOW - timedelta(days=2, hours=3)
    routes["/feed.xml"] = Response(200, _feed(server.url(""), dated), {"Content-Type": "application/rss+xml"})
    routes["/story"] = Response(200, _page(page_date), {"Content-Type": "text/html; charset=utf-8"})
    agg = make_aggregator(make_config([{"url": server.url("/feed.xml"), "name": "Gazette"}]), clock=lambda: NOW)
    try:
        [report] = asyncio.run(agg.poll_round(due_only=False))
        assert report.error is None and report.new_articles == 1
        with agg.store.engine.connect() as conn:
            published, text = conn.exec_driver_sql("SELECT published_at, text FROM articles").one()
    finally:
        agg.close()
    return datetime.fromisoformat(str(published)).replace(tzinfo=timezone.utc), text


def test_an_entry_the_feed_does_not_date_is_dated_when_first_seen_not_by_a_stale_page_date(server, routes, make_config) -> None:
    published, text = _poll_one(server, routes, make_config, dated=False)
    # the page's metadata says two days ago: alone, that would let any feed backdate an item and
    # take "first reported" (issue 18); the item is dated when first seen
    assert published == NOW
    assert text.startswith("The harbour authority said")  # the page's text, its headline not repeated


def test_a_dated_entry_keeps_the_feeds_date_and_gets_the_pages_text(server, routes, make_config) -> None:
    published, text = _poll_one(server, routes, make_config, dated=True)
    assert published == NOW - timedelta(hours=5)
    assert text.startswith("The harbour authority said") and "first Monday" in text


FOOTER = (
    "Harbour Gazette is an independent, reader-funded newsroom covering the bay, its towns and its "
    "people since 1887. Our journalism is free to read because thousands of readers chip in every "
    "month. If you value local reporting, please consider a monthly contribution or subscribe to our "
    "morning newsletter for the day's headlines, weather and ferry times, delivered before seven. "
    "Follow us on social media, send us your tips in confidence, and tell us what we should investigate next."
)
SHORT_NEWS = [
    ("Council approves harbour wall", "Councillors voted nine to two for a new harbour wall on Tuesday."),
    ("Ferry runs aground off north pier", "All forty passengers of the morning ferry were brought ashore safely."),
    ("Library to open on Sundays", "The town library will open on Sundays from March, the mayor said."),
    ("Fishermen protest cod quotas", "Dozens of fishermen blocked the port road over new quotas for cod."),
    ("Storm warning for the coast", "Gusts of up to 110 km/h are expected overnight, forecasters warned."),
]


def test_a_footer_in_every_feed_item_neither_merges_its_stories_nor_is_stored(server, routes, make_config) -> None:
    """Short items whose feed text is mostly the outlet's footer: the footer is the feed's template,
    not news, so the five unrelated items stay five stories and their stored texts are the news."""
    items = "".join(
        f"<item><title>{title}</title><guid>n{i}</guid><pubDate>{format_datetime(NOW - timedelta(hours=i), usegmt=True)}</pubDate>"
        f"<description><![CDATA[<p>{text}</p><p>{FOOTER}</p>]]></description></item>"
        for i, (title, text) in enumerate(SHORT_NEWS)
    )
    routes["/feed.xml"] = Response(200, f'<?xml version="1.0"?><rss version="2.0"><channel><title>Gazette</title>{items}</channel></rss>'.encode(),
                                   {"Content-Type": "application/rss+xml"})
    agg = make_aggregator(make_config([{"url": server.url("/feed.xml"), "name": "Gazette"}]), clock=lambda: NOW)
    try:
        [report] = asyncio.run(agg.poll_round(due_only=False))
        assert report.error is None and report.new_articles == len(SHORT_NEWS)
        with agg.store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT a.title, a.text, m.story_id FROM articles a JOIN story_members m ON m.article_id = a.id").all()
    finally:
        agg.close()
    assert len({story for _t, _x, story in rows}) == len(SHORT_NEWS)
    assert sorted((title, text) for title, text, _s in rows) == sorted(SHORT_NEWS)
