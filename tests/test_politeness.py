"""Politeness toward the servers we poll: Retry-After counts from the answer, and a page several feeds
list is fetched once a round (issue 17). The address guard's part of it is in test_netguard.py."""

from __future__ import annotations

import asyncio
import html
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from aggregator.factory import make_aggregator
from aggregator.models import Entry, PageText
from aggregator.pages import RoundPages
from aggregator.tools.feedserver import Request, Response

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
RSS = "application/rss+xml; charset=utf-8"
EMPTY_RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'


def test_retry_after_counts_from_the_answer_not_from_the_round(server, routes, make_config) -> None:
    """The 429 comes 40 s into the round: 'Retry-After: 120' means 160 s after the round began."""
    clock = [NOW]

    def busy(request: Request) -> Response:
        clock[0] = NOW + timedelta(seconds=40)  # the server took 40 s to say so
        return Response(429, b"slow down", {"Retry-After": "120", "Content-Type": "text/plain"})

    routes["/busy.xml"] = busy
    config = make_config([{"url": server.url("/busy.xml"), "name": "Busy", "interval": "1m"}], schedule={"jitter": 0})
    agg = make_aggregator(config, clock=lambda: clock[0])
    try:
        [report] = asyncio.run(agg.poll_round(NOW, due_only=False))
        [feed] = agg.feeds()
    finally:
        agg.close()
    assert report.error and "429" in report.error
    assert feed.next_poll_at == NOW + timedelta(seconds=40 + 120)
    assert feed.last_error_at == NOW  # the round's time stays the poll's time


def test_the_next_poll_after_a_slow_answer_counts_from_the_answer(server, routes, make_config) -> None:
    clock = [NOW]

    def slow(request: Request) -> Response:
        clock[0] = NOW + timedelta(seconds=40)
        return Response(200, EMPTY_RSS, {"Content-Type": RSS})

    routes["/slow.xml"] = slow
    config = make_config([{"url": server.url("/slow.xml"), "name": "Slow", "interval": "5m"}], schedule={"jitter": 0})
    agg = make_aggregator(config, clock=lambda: clock[0])
    try:
        [report] = asyncio.run(agg.poll_round(NOW, due_only=False))
        [feed] = agg.feeds()
    finally:
        agg.close()
    assert report.error is None
    assert feed.next_poll_at == NOW + timedelta(seconds=40 + 300)


def _page(title: str) -> bytes:
    paragraphs = "".join(
        f"<p>{html.escape(p)}</p>" for p in [
            f"{title}: the harbour authority said the work will be finished in March after two years of delays.",
            "Officials blamed cost overruns on steel prices and a contractor that went bankrupt in 2024.",
            "Commuters who cross the bay every day said the old terminal had become unsafe in winter storms.",
            "The first crossings from the new pier are planned for the first Monday of the month, the authority said.",
        ]
    )
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head><body><main><article>'
            f"<h1>{title}</h1>{paragraphs}</article></main></body></html>").encode()


def _teasers(base: str, feed: int) -> bytes:
    """A section feed listing the same three articles as the others, each with a one-line teaser."""
    items = "".join(
        f"<item><title>Story {k}</title><link>{base}/a/{k}{'?utm_source=s' + str(feed) if k == 3 else ''}</link>"
        f"<guid>s{feed}-{k}</guid><pubDate>{format_datetime(NOW - timedelta(hours=k), usegmt=True)}</pubDate>"
        f"<description>Teaser {k}.</description></item>"
        for k in (1, 2, 3)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Section {feed}</title>{items}</channel></rss>'.encode()


def test_a_page_several_feeds_list_is_fetched_once_a_round(server, routes, make_config) -> None:
    base = server.url("").rstrip("/")
    for k in (1, 2, 3):
        routes[f"/a/{k}"] = Response(200, _page(f"Story {k}"), {"Content-Type": "text/html; charset=utf-8"})
    for i in range(20):
        routes[f"/s{i}.xml"] = Response(200, _teasers(base, i), {"Content-Type": RSS})
    config = make_config([{"url": server.url(f"/s{i}.xml"), "name": f"Section {i}"} for i in range(20)],
                         extract={"fetch_pages": True, "workers": 1})
    agg = make_aggregator(config, clock=lambda: NOW)
    try:
        reports = asyncio.run(agg.poll_round(NOW, due_only=False))
        with agg.store.engine.connect() as conn:
            texts = [t for (t,) in conn.exec_driver_sql("SELECT text FROM articles")]
    finally:
        agg.close()
    assert all(r.error is None for r in reports), [r.error for r in reports if r.error]
    pages = Counter(r.path.split("?", 1)[0] for r in server.requests if r.path.startswith("/a/"))
    assert pages == {"/a/1": 1, "/a/2": 1, "/a/3": 1}  # not once per feed (and ?utm_source=... is the same page)
    assert texts and all("harbour authority" in t for t in texts)  # every feed's entry got the page's text


def test_round_pages_share_one_fetch_and_its_failure() -> None:
    calls: list[str] = []

    async def load(entry: Entry) -> PageText | None:
        assert entry.url
        calls.append(entry.url)
        await asyncio.sleep(0.01)
        return None if "gone" in entry.url else PageText(text=f"text of {entry.url}")

    def entry(url: str) -> Entry:
        return Entry(guid=url, url=url, title="t", text="", published=None)

    async def go() -> list[PageText | None]:
        pages = RoundPages(load)
        try:
            return list(await asyncio.gather(*(pages.get(entry(u)) for u in [
                "http://a.example/1", "HTTP://A.example/1#top", "http://a.example/gone", "http://a.example/gone",
                "http://a.example/1?utm_medium=x",
            ])))
        finally:
            pages.close()

    results = asyncio.run(go())
    assert calls == ["http://a.example/1", "http://a.example/gone"]
    assert results[0] == results[1] == results[4] == PageText(text="text of http://a.example/1")
    assert results[2] is None and results[3] is None


def test_round_pages_forget_the_oldest_beyond_their_limit() -> None:
    calls: list[str] = []

    async def load(entry: Entry) -> PageText | None:
        assert entry.url
        calls.append(entry.url)
        return PageText(text=entry.url)

    async def go() -> None:
        pages = RoundPages(load, limit=2)
        for url in ["http://a.example/1", "http://a.example/2", "http://a.example/3", "http://a.example/3", "http://a.example/1"]:
            await pages.get(Entry(guid=url, url=url, title="t", text="", published=None))
        pages.close()

    asyncio.run(go())
    assert calls == ["http://a.example/1", "http://a.example/2", "http://a.example/3", "http://a.example/1"]


def test_one_feeds_cancelled_poll_does_not_cancel_the_page_another_awaits() -> None:
    async def go() -> PageText | None:
        gate = asyncio.Event()

        async def load(entry: Entry) -> PageText | None:
            await gate.wait()
            return PageText(text="page")

        pages = RoundPages(load)
        e = Entry(guid="g", url="http://a.example/1", title="t", text="", published=None)
        first = asyncio.create_task(pages.get(e))
        second = asyncio.create_task(pages.get(e))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        gate.set()
        try:
            return await second
        finally:
            pages.close()

    assert asyncio.run(go()) == PageText(text="page")
