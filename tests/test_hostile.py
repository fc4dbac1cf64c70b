"""One polling round over well-behaved and hostile feeds on 127.0.0.1: every bad feed gets a clear
per-feed error (or its recoverable entries), the good ones are stored, and nothing crashes."""

from __future__ import annotations

import asyncio
import gzip
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from aggregator.factory import make_aggregator
from aggregator.tools.feedserver import Response

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
RSS = "application/rss+xml; charset=utf-8"


def rss(*items: tuple[str, str, str], prolog: str = "") -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=i + 1), usegmt=True)}</pubDate><description>{d}</description></item>"
        for i, (t, link, d) in enumerate(items)
    )
    return f'<?xml version="1.0" encoding="utf-8"?>{prolog}<rss version="2.0"><channel><title>Feed</title>{body}</channel></rss>'.encode()


TEXT = "The harbour authority said the new ferry terminal will open in March after two years of delays and cost overruns. " * 5


def drip():
    for _ in range(100):  # bounded: at most 100 s of dripping, cut by the client's deadline long before
        time.sleep(1)
        yield b" "


def endless():
    for _ in range(10**6):  # bounded, and far beyond the body cap
        yield b"<item>" + b"x" * 4096 + b"</item>"


@pytest.fixture
def hostile(server, routes, make_config):
    base = server.base_url
    routes["/good.xml"] = Response(200, rss(("Ferry terminal to open in March", f"{base}/a/1", TEXT)), {"Content-Type": RSS})
    routes["/moved-here.xml"] = Response(200, rss(("Council approves budget", f"{base}/a/2", TEXT.replace("ferry", "budget"))), {"Content-Type": RSS})
    routes["/temp-here.xml"] = Response(200, rss(("Library reopens", f"{base}/a/3", TEXT.replace("ferry", "library"))), {"Content-Type": RSS})
    routes["/moved.xml"] = Response(301, b"", {"Location": "/moved-here.xml"})
    routes["/temp.xml"] = Response(302, b"", {"Location": "/temp-here.xml"})
    routes["/loop.xml"] = Response(301, b"", {"Location": "/loop2.xml"})
    routes["/loop2.xml"] = Response(301, b"", {"Location": "/loop.xml"})
    routes["/xxe.xml"] = Response(200, rss(("&xxe; secret", f"{base}/a/4", "x"), prolog='<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'), {"Content-Type": RSS})
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    routes["/lol.xml"] = Response(200, rss(("&l9; laughs", f"{base}/a/5", "x"), prolog=f'<!DOCTYPE rss [<!ENTITY l0 "lol">{lol}]>'), {"Content-Type": RSS})
    routes["/nul.xml"] = Response(200, rss(("Nul\x00 bytes here", f"{base}/a/6", "text\x00with nul")), {"Content-Type": RSS})
    routes["/truncated.xml"] = Response(200, rss(("Recoverable one", f"{base}/a/7", TEXT.replace("ferry", "tram")), ("Second", f"{base}/a/8", "y"))[:-60], {"Content-Type": RSS})
    routes["/latin1.xml"] = Response(200, rss(("Café crème à Zürich", f"{base}/a/9", "déjà vu")).decode().encode("latin-1", "replace"), {"Content-Type": RSS})
    routes["/html.xml"] = Response(200, b"<!DOCTYPE html><html><body><p>Not a feed</p></body></html>", {"Content-Type": "text/html"})
    routes["/json.xml"] = Response(200, b'{"not": "a feed"}', {"Content-Type": "application/json"})
    routes["/empty.xml"] = Response(200, b"", {"Content-Type": RSS})
    routes["/404.xml"] = Response(404, b"gone fishing")
    routes["/500.xml"] = Response(500, b"oops")
    routes["/410.xml"] = Response(410, b"removed")
    routes["/429.xml"] = Response(429, b"slow down", {"Retry-After": "7200"})
    routes["/503.xml"] = Response(503, b"busy", {"Retry-After": format_datetime(NOW + timedelta(minutes=30), usegmt=True)})
    routes["/drip.xml"] = Response(200, headers={"Content-Type": RSS}, chunks=drip)
    routes["/endless.xml"] = Response(200, headers={"Content-Type": RSS}, chunks=endless)
    routes["/bomb.xml"] = Response(200, gzip.compress(b"\0" * (50 * 1024 * 1024)), {"Content-Type": RSS, "Content-Encoding": "gzip"})
    routes["/liar.xml"] = Response(200, rss(("Liar", f"{base}/a/10", "z")), {"Content-Type": RSS, "Content-Length": "99999999"})
    names = [p.strip("/").removesuffix(".xml") for p in routes.table if not p.endswith("-here.xml") and p != "/loop2.xml"]
    config = make_config(
        [{"url": server.url(f"/{n}.xml"), "name": n, "interval": "15m"} for n in names],
        fetch={"total_deadline": "2s", "read_timeout": "1s", "max_body_bytes": 1_000_000, "per_host_concurrency": 8},
        extract={"fetch_pages": False},
        schedule={"jitter": 0, "max_backoff": "6h"},
    )
    agg = make_aggregator(config, clock=lambda: NOW)
    yield agg, server
    agg.close()


def test_one_round_survives_every_hostile_feed(hostile):
    agg, server = hostile
    started = time.monotonic()
    reports = {r.feed_url.rsplit("/", 1)[-1].removesuffix(".xml"): r for r in asyncio.run(agg.poll_round(NOW))}
    assert time.monotonic() - started < 20, "the total deadline must bound slow and endless servers"
    feeds = {f.name: f for f in agg.feeds()}

    for name in ("good", "moved", "temp", "truncated", "latin1", "nul", "xxe", "lol"):
        assert reports[name].error is None, (name, reports[name].error)
    stored = {v.url for s in agg.stories_between(NOW - timedelta(days=2), NOW + timedelta(hours=1)) for v in s.variants}
    base = server.base_url
    assert {f"{base}/a/1", f"{base}/a/2", f"{base}/a/3", f"{base}/a/7"} <= stored
    assert all("root:" not in v.title for s in agg.stories_between(NOW - timedelta(days=2), NOW) for v in s.variants)

    expected_errors = {
        "html": "HTML page", "json": "not an RSS or Atom feed", "empty": "empty response body", "404": "HTTP 404",
        "500": "HTTP 500", "410": "HTTP 410", "429": "HTTP 429", "503": "HTTP 503", "loop": "redirect loop",
        "drip": "no complete answer within 2s", "endless": "cap", "bomb": "cap",
    }
    for name, fragment in expected_errors.items():
        assert reports[name].error and fragment in reports[name].error, (name, reports[name].error)
        assert feeds[name].last_error and fragment in feeds[name].last_error
        assert feeds[name].error_count == 1
    assert reports["liar"].error is not None or reports["liar"].new_articles == 1

    # Redirects: 301 moves the feed (its target answered with a feed); 302 does not.
    assert feeds["moved"].url.endswith("/moved-here.xml")
    assert feeds["temp"].url.endswith("/temp.xml")
    # Gone disables; Retry-After (seconds or HTTP-date) sets the next poll; other errors back off.
    assert feeds["410"].disabled_reason and "Gone" in feeds["410"].disabled_reason
    assert feeds["429"].next_poll_at is not None and abs((feeds["429"].next_poll_at - NOW).total_seconds() - 7200) < 400
    assert feeds["503"].next_poll_at is not None and abs((feeds["503"].next_poll_at - NOW).total_seconds() - 1800) < 100
    assert feeds["404"].next_poll_at is not None and feeds["404"].next_poll_at - NOW >= timedelta(minutes=29)
    assert feeds["good"].error_count == 0 and feeds["good"].last_success_at == NOW
    from aggregator.decide import health

    assert (health(feeds["good"]), health(feeds["410"]), health(feeds["500"])) == ("ok", "disabled", "backing off (1 failure in a row)")


def test_second_round_only_polls_what_is_due_and_keeps_everything(hostile):
    agg, server = hostile
    asyncio.run(agg.poll_round(NOW))
    before = agg.store.counts()
    asyncio.run(agg.poll_round(NOW + timedelta(minutes=1)))
    assert agg.store.counts() == before
    later = NOW + timedelta(minutes=20)
    agg.clock = lambda: later
    reports = asyncio.run(agg.poll_round(later))
    polled = {r.feed_url.rsplit("/", 1)[-1] for r in reports}
    assert "410.xml" not in polled and "429.xml" not in polled  # disabled / told to wait two hours
    assert "good.xml" in polled
    assert agg.store.counts()["articles"] == before["articles"]


def test_hostile_summary_html_reaches_the_digest_sanitized(server, routes, make_config, tmp_path):
    """Feed HTML travels fetch -> parse -> SQLite -> digest; only formatting and http(s) links come out."""
    summary = (
        "<p>The terminal opens in <strong>March</strong>, "
        '<a href="https://harbour.example.org/terminal">the authority said</a>.</p>'
        '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">more</a>'
    )
    item = (
        f"<item><title>Ferry terminal to open in March</title><link>{server.url('/a/1')}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=1), usegmt=True)}</pubDate>"
        f"<description><![CDATA[{summary}]]></description><content:encoded><![CDATA[<p>{TEXT}</p>]]></content:encoded></item>"
    )
    routes["/feed.xml"] = Response(200, (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>Gazette</title>{item}</channel></rss>"
    ).encode(), {"Content-Type": RSS})
    config = make_config([{"url": server.url("/feed.xml"), "name": "Gazette"}], extract={"fetch_pages": False})
    agg = make_aggregator(config, clock=lambda: NOW)
    try:
        asyncio.run(agg.poll_round(NOW))
        html = agg.write_digest(NOW.date()).html.read_text(encoding="utf-8")
    finally:
        agg.close()
    import lxml.html

    lead = lxml.html.document_fromstring(html).find(".//div[@class='lead']")
    assert lead is not None and lead.find(".//strong").text == "March"
    assert [a.get("href") for a in lead.iter("a")] == ["https://harbour.example.org/terminal", None]
    assert "alert" not in html and "<script" not in html.lower() and "onerror" not in html
