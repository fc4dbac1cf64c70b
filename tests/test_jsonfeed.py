"""JSON Feed (https://jsonfeed.org, versions 1 and 1.1), which feedparser does not read: parsed into
the same records as RSS and Atom, hopeless input refused with a clear error, and a JSON Feed polled
through the real pipeline."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from aggregator.errors import ParseError
from aggregator.factory import make_aggregator
from aggregator.parse import parse_feed
from aggregator.tools.feedserver import Response

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
URL = "https://wire.example/feed.json"
JSON_FEED = {"content-type": "application/feed+json"}
V11 = "https://jsonfeed.org/version/1.1"


def feed(items: list[dict[str, Any]], **top: Any) -> bytes:
    return json.dumps({"version": V11, "title": "Harbour Wire", "items": items, **top}).encode()


def test_a_json_feed_becomes_the_records_an_rss_feed_becomes() -> None:
    body = feed(
        [
            {
                "id": "wire-1",
                "url": "https://wire.example/a/1?utm_source=feed",
                "title": "Ferry terminal to open in March",
                "content_html": "<p>The harbour authority said the terminal opens in March.</p><p>Work took two years.</p>",
                "summary": "Terminal opens in March <soon>",
                "date_published": "2026-11-19T08:30:00+01:00",
                "date_modified": "2026-11-19T10:00:00Z",
                "authors": [{"name": "Ana Ruiz"}, {"name": "Tom Berg", "url": "https://wire.example/tom"}],
                "language": "en-GB",
            },
            {
                "id": 42,  # numbers are ids too (the spec: coerce to a string)
                "external_url": "https://other.example/story",
                "title": "Caf&eacute; closes",
                "content_text": "The café on the quay closes.\n\nIt opened in 1952.",
                "date_modified": "2026-11-18t07:00:00z",
            },
        ],
        home_page_url="https://wire.example/",
        language="en",
        authors=[{"name": "Wire desk"}],
    )
    parsed = parse_feed(URL, body, JSON_FEED)
    assert (parsed.title, parsed.site_url, parsed.lang, parsed.warning, parsed.broken) == ("Harbour Wire", "https://wire.example/", "en", None, False)
    first, second = parsed.entries
    assert first.guid == "wire-1"
    assert first.url == "https://wire.example/a/1"  # normalised as RSS links are: tracking parameters gone
    assert first.title == "Ferry terminal to open in March"
    assert first.text == "The harbour authority said the terminal opens in March.\n\nWork took two years."
    assert first.published == datetime(2026, 11, 19, 7, 30, tzinfo=timezone.utc)  # date_published, in UTC
    assert first.author == "Ana Ruiz, Tom Berg"
    assert first.lang == "en-GB"
    assert first.summary_html == "Terminal opens in March &lt;soon&gt;"  # plain text in JSON Feed: escaped, not read as HTML
    assert second.guid == "42"
    assert second.url == "https://other.example/story"
    assert second.title == "Café closes"
    assert second.text == "The café on the quay closes.\n\nIt opened in 1952."
    assert second.published == datetime(2026, 11, 18, 7, 0, tzinfo=timezone.utc)  # date_modified when unpublished; lower-case t and z
    assert (second.author, second.lang) == ("Wire desk", "en")  # the feed's authors and language when the item has none


def test_json_feed_1_0_author_and_items_without_id_or_date() -> None:
    body = json.dumps({
        "version": "https://jsonfeed.org/version/1",
        "title": "Old style",
        "author": {"name": "Solo Writer"},
        "items": [
            {"url": "https://old.example/p/1", "title": "Only a link", "content_text": "Text."},
            {"content_html": "<b>No id, no url, no title</b>"},
            {"title": "", "content_text": ""},  # nothing to show: skipped
            "not an object",
        ],
    }).encode()
    parsed = parse_feed(URL, body, {"content-type": "application/json"})
    assert [e.guid for e in parsed.entries][0] == "https://old.example/p/1"  # no id: the URL, as for RSS
    assert parsed.entries[1].guid.startswith("sha1:") and parsed.entries[1].text == "No id, no url, no title"
    assert all(e.author == "Solo Writer" and e.published is None for e in parsed.entries)
    assert len(parsed.entries) == 2
    assert parsed.broken and parsed.warning == "1 item(s) that are not JSON objects were skipped"
    assert parse_feed(URL, body, JSON_FEED).entries == parsed.entries  # the same bytes read the same, however served
    assert parse_feed(URL, body, {}).entries == parsed.entries
    again = parse_feed(URL, body, JSON_FEED)
    assert again.entries[1].guid == parsed.entries[1].guid  # a stable id without one given


def test_a_json_feed_without_a_content_type_or_with_a_bom_is_read() -> None:
    body = feed([{"id": "1", "title": "Hello", "content_text": "World"}])
    for headers in ({}, {"Content-Type": "text/plain; charset=utf-8"}, {"content-type": "application/octet-stream"}):
        assert parse_feed(URL, b"\xef\xbb\xbf  " + body, headers).entries[0].title == "Hello"


def test_the_same_guid_twice_keeps_the_first_and_template_footers_are_dropped() -> None:
    footer = "<p>Read more on Harbour Wire.</p>"
    news = ["The quay reopens.", "A ferry sank.", "The mayor resigned.", "Rain is forecast."]
    items = [{"id": f"n{i}", "title": f"Story {i}", "content_html": f"<p>{line}</p>{footer}"} for i, line in enumerate(news)]
    items.append({"id": "n0", "title": "A later copy", "content_text": "ignored"})
    parsed = parse_feed(URL, feed(items), JSON_FEED)
    assert [e.title for e in parsed.entries] == ["Story 0", "Story 1", "Story 2", "Story 3"]
    assert all("Read more" not in e.text for e in parsed.entries)


def test_bad_dates_and_odd_types_do_not_crash() -> None:
    items = [
        {"id": True, "url": 7, "title": ["x"], "content_text": "Kept text", "date_published": "yesterday", "authors": "me", "language": 3},
        {"id": "2", "title": "Far past", "content_text": "x", "date_published": "0001-01-01T00:00:00+01:00"},
    ]
    first, second = parse_feed(URL, feed(items), JSON_FEED).entries
    assert (first.text, first.url, first.title, first.published, first.author, first.lang) == ("Kept text", None, "", None, None, None)
    assert first.guid.startswith("sha1:")  # a boolean is no id
    assert second.published is None


@pytest.mark.parametrize(
    ("body", "headers", "fragment"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', JSON_FEED, "invalid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [}', {}, "invalid JSON"),
        (b'{"title": "\xff\xfe broken utf-8"}', {"content-type": "application/json"}, "invalid JSON"),
        (b'{"not": "a feed"}', {"content-type": "application/json"}, "nor a JSON Feed"),
        (b'{"version": "2.0", "items": []}', {"content-type": "application/json"}, "nor a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', JSON_FEED, "nor a JSON Feed"),
        (b'{"items": []}', {}, "nor a JSON Feed"),
        (b"{" + b'"a":[' * 100_000, JSON_FEED, "invalid JSON"),
        (b'{"a": [' * 50_000 + b"]}" * 50_000, JSON_FEED, "nested too deeply"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [], "n": ' + b"9" * 10_000 + b"}", {}, "invalid JSON"),
    ],
)
def test_broken_or_foreign_json_is_a_clear_parse_error(body: bytes, headers: dict[str, str], fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(URL, body, headers)
    assert fragment in str(info.value) and info.value.url == URL
    assert len(str(info.value).splitlines()) == 1


def test_a_json_feed_served_as_feed_json_without_a_version_is_read() -> None:
    """The media type says what it is; the version is then not needed to believe it."""
    parsed = parse_feed(URL, json.dumps({"items": [{"id": "1", "title": "Typed", "content_text": "x"}]}).encode(), JSON_FEED)
    assert [e.title for e in parsed.entries] == ["Typed"]


def test_rss_served_as_json_is_still_read_as_rss() -> None:
    rss = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Mislabelled</title><item><title>A</title><guid>a</guid></item></channel></rss>'
    parsed = parse_feed(URL, rss, JSON_FEED)
    assert parsed.title == "Mislabelled" and [e.guid for e in parsed.entries] == ["a"]


def test_a_json_feed_is_polled_stored_and_clustered_like_any_feed(server, routes, make_config) -> None:
    base = server.base_url
    text = "The harbour authority said the new ferry terminal will open in March after two years of delays. " * 6
    items = [
        {"id": "j1", "url": f"{base}/a/1", "title": "Ferry terminal to open in March", "content_text": text,
         "date_published": (NOW - timedelta(hours=2)).isoformat()},
        {"id": "j2", "url": f"{base}/a/2", "title": "Council approves the budget", "content_html": "<p>" + text.replace("ferry", "budget") + "</p>",
         "date_published": (NOW - timedelta(hours=1)).isoformat()},
    ]
    routes["/feed.json"] = Response(200, feed(items), {"Content-Type": "application/feed+json"})
    config = make_config([{"url": server.url("/feed.json"), "name": "Wire"}], extract={"fetch_pages": False, "workers": 1})
    agg = make_aggregator(config, clock=lambda: NOW)
    try:
        reports = asyncio.run(agg.poll_round(NOW))
        assert [(r.error, r.new_articles) for r in reports] == [(None, 2)]
        stored = agg.stories_between(NOW - timedelta(days=1), NOW + timedelta(hours=1))
        assert sorted(v.url for s in stored for v in s.variants) == [f"{base}/a/1", f"{base}/a/2"]
        assert {v.source for s in stored for v in s.variants} == {"Wire"}
    finally:
        agg.close()
