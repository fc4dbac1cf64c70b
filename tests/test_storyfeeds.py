"""The story feeds (Atom and JSON Feed 1.1), from stories built by polling loopback feeds into a real
SQLite database: one entry per story, ids that stay while ``updated`` moves when a story gains a
variant, the JSON Feed checked against a schema written from its specification, hostile text inert."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape as xml_escape

import feedparser
import jsonschema
import lxml.etree
import lxml.html
import pytest

from aggregator.core import Aggregator
from aggregator.factory import make_aggregator
from aggregator.models import Story
from aggregator.storyfeeds import atom_feed, json_feed, story_entry_id
from aggregator.tools.feedserver import Response
from test_digest import story as hand_story
from test_digest import variant as hand_variant

NOW = datetime(2026, 5, 14, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=2)
RSS = "application/rss+xml; charset=utf-8"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
BASE = "http://127.0.0.1:8080"

FERRY = ("The harbour authority said the new ferry terminal at Port Elwyn will open in March after two years of "
         "delays, cost overruns and a dispute with the contractor over the design of the passenger bridge. ") * 4
BUDGET = ("Councillors in Elwyn voted by a narrow margin to approve the annual budget, which raises spending on "
          "schools and road repairs while cutting the grant to the town's museum and its two public libraries. ") * 4
TRAM = ("Engineers began testing the first tram on the new line along the seafront, where services are due to start "
        "in the autumn once the overhead wires and the last three stops have been inspected and signed off. ") * 4
OLD = ("A storm brought down power lines across the northern valleys, leaving several thousand homes without "
       "electricity for most of the night until repair crews restored supplies early on Tuesday morning. ") * 4
HOSTILE_TITLE = "<script>alert(1)</script> Tram trials begin"


def rss(name: str, *items: tuple[str, str, str, float]) -> bytes:
    """An RSS 2.0 document: (title, link, text, hours before NOW) per item, all text XML-escaped."""
    body = "".join(
        f"<item><title>{xml_escape(title)}</title><link>{xml_escape(link)}</link><guid isPermaLink=\"false\">{xml_escape(title)}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=hours), usegmt=True)}</pubDate><description>{xml_escape(text)}</description></item>"
        for title, link, text, hours in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{name}</title>{body}</channel></rss>'.encode()


@dataclass
class Stream:
    agg: Aggregator
    base: str  # the loopback server's
    clock: list[datetime]
    grow: Callable[[], None]  # the wire's copy of the ferry story appears, polled at LATER

    def stories(self) -> list[Story]:
        return self.agg.feed_stories()

    def by_title(self, title: str) -> Story:
        return next(s for s in self.stories() if s.title == title)


@pytest.fixture
def stream(server, routes, make_config) -> Iterator[Stream]:
    """Three stories of the last day and one of three days ago, from a gazette; a wire feed empty
    until ``grow``, when it carries a copy of the ferry story."""
    base = server.base_url
    routes["/gazette.xml"] = Response(200, rss(
        "Gazette",
        ("Ferry terminal to open in March", f"{base}/a/ferry", FERRY, 5),
        ("Council approves budget", f"{base}/a/budget", BUDGET, 3),
        (HOSTILE_TITLE, "javascript:alert(1)", TRAM, 1),
        ("Storm cuts power to valleys", f"{base}/a/storm", OLD, 72),
    ), {"Content-Type": RSS})
    routes["/wire.xml"] = Response(200, rss("Wire"), {"Content-Type": RSS})
    config = make_config(
        [{"url": server.url("/gazette.xml"), "name": "Harbour Gazette"}, {"url": server.url("/wire.xml"), "name": "Wire Service"}],
        extract={"fetch_pages": False, "workers": 1}, schedule={"jitter": 0}, timezone="UTC",
    )
    clock = [NOW]
    agg = make_aggregator(config, clock=lambda: clock[0])

    def grow() -> None:
        routes["/wire.xml"] = Response(200, rss("Wire", ("Ferry terminal opens in March", f"{base}/w/ferry", FERRY, 0.5)), {"Content-Type": RSS})
        clock[0] = LATER
        asyncio.run(agg.poll_round(LATER, due_only=False))

    try:
        asyncio.run(agg.poll_round(NOW, due_only=False))
        yield Stream(agg, base, clock, grow)
    finally:
        agg.close()


def render_atom(stories: list[Story], base_url: str | None = None) -> bytes:
    return atom_feed(stories, base_url=base_url, title="News stories", updated=NOW)


def render_json(stories: list[Story], base_url: str | None = None) -> dict:
    return json.loads(json_feed(stories, base_url=base_url, title="News stories", updated=NOW))


def parsed(atom: bytes) -> feedparser.FeedParserDict:
    feed = feedparser.parse(atom)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


# -- Atom ------------------------------------------------------------------------------------------


def test_feed_stories_are_the_last_two_days_most_recently_updated_first(stream: Stream) -> None:
    stories = stream.stories()
    assert "Storm cuts power to valleys" not in [s.title for s in stories]  # 72 hours old
    assert len(stories) == 3 and all(s.canonical.text for s in stories)  # text loaded, for the excerpt
    assert [s.updated_at for s in stories] == sorted((s.updated_at for s in stories), reverse=True)
    stream.grow()
    assert stream.stories()[0].title == "Ferry terminal to open in March"  # it gained a variant: first now


def test_the_number_of_stories_is_capped_by_the_setting(server, routes, make_config) -> None:
    routes["/g.xml"] = Response(200, rss("G", ("One", f"{server.base_url}/1", FERRY, 2), ("Two", f"{server.base_url}/2", BUDGET, 1)),
                                {"Content-Type": RSS})
    agg = make_aggregator(make_config([{"url": server.url("/g.xml"), "name": "G"}], extract={"fetch_pages": False, "workers": 1},
                                      digest={"feed_max_stories": 1}), clock=lambda: NOW)
    try:
        asyncio.run(agg.poll_round(NOW, due_only=False))
        assert len(agg.stories_between(NOW - timedelta(days=1), NOW)) == 2
        assert len(agg.feed_stories()) == 1
    finally:
        agg.close()


def test_atom_has_one_entry_per_story_with_stable_ids(stream: Stream) -> None:
    stories = stream.stories()
    first, again = render_atom(stories), render_atom(stream.stories())
    assert first == again  # nothing changed: the same bytes
    feed = parsed(first)
    assert feed.feed.title == "News stories"
    assert [e.id for e in feed.entries] == [story_entry_id(s) for s in stories]
    assert len({e.id for e in feed.entries}) == len(stories) == 3
    for entry, s in zip(feed.entries, stories, strict=True):
        assert entry.id.startswith("urn:uuid:")
        assert entry.title == s.title
        assert [a.name for a in entry.authors] == list(s.sources)
        assert datetime(*entry.updated_parsed[:6], tzinfo=timezone.utc) == s.updated_at.replace(microsecond=0)
        assert datetime(*entry.published_parsed[:6], tzinfo=timezone.utc) == s.first_reported_at.replace(microsecond=0)
    ferry = next(e for e in feed.entries if e.title == "Ferry terminal to open in March")
    assert ferry.link == f"{stream.base}/a/ferry"  # files: the canonical article
    content = lxml.html.fragment_fromstring(ferry.content[0].value, create_parent="div").text_content()
    assert "First reported by Harbour Gazette at" in content and "1 outlet: Harbour Gazette" in content
    assert "The harbour authority said" in content  # the excerpt


def test_ids_stay_and_updated_moves_when_a_story_gains_a_variant(stream: Stream) -> None:
    before = {e.title: e for e in parsed(render_atom(stream.stories())).entries}
    stream.grow()
    after_stories = stream.stories()
    after = {e.title: e for e in parsed(render_atom(after_stories)).entries}
    assert after.keys() == before.keys()
    assert {t: e.id for t, e in after.items()} == {t: e.id for t, e in before.items()}
    ferry_before, ferry_after = before["Ferry terminal to open in March"], after["Ferry terminal to open in March"]
    assert ferry_after.updated_parsed > ferry_before.updated_parsed  # it gained a variant
    assert ferry_after.published_parsed == ferry_before.published_parsed
    assert [a.name for a in ferry_after.authors] == ["Harbour Gazette", "Wire Service"]
    content = lxml.html.fragment_fromstring(ferry_after.content[0].value, create_parent="div")
    assert "2 outlets (1 copy of Harbour Gazette): Harbour Gazette, Wire Service" in content.text_content()
    assert [a.text_content() for a in content.iter("a")] == ["Ferry terminal to open in March", "Ferry terminal opens in March"]
    for title in ("Council approves budget",):
        assert after[title].updated_parsed == before[title].updated_parsed  # the others did not move
    # and the JSON Feed agrees
    items = {i["title"]: i for i in render_json(after_stories)["items"]}
    assert items["Ferry terminal to open in March"]["id"] == ferry_after.id
    assert [a["name"] for a in items["Ferry terminal to open in March"]["authors"]] == ["Harbour Gazette", "Wire Service"]


def test_served_feeds_link_to_the_server(stream: Stream) -> None:
    stories = stream.stories()
    atom = parsed(atom_feed(stories, base_url=BASE + "/", title="News stories", updated=NOW))
    assert [e.link for e in atom.entries] == [f"{BASE}/stories/{s.id}" for s in stories]
    assert {(link.rel, link.href) for link in atom.feed.links} == {("self", f"{BASE}/feeds/stories.atom"), ("alternate", f"{BASE}/")}
    assert [e.id for e in atom.entries] == [e.id for e in parsed(render_atom(stories)).entries]  # the same ids as the files'
    doc = render_json(stories, base_url=BASE)
    assert doc["feed_url"] == f"{BASE}/feeds/stories.json" and doc["home_page_url"] == f"{BASE}/"
    assert [i["url"] for i in doc["items"]] == [f"{BASE}/stories/{s.id}" for s in stories]
    ferry = next(i for i in doc["items"] if i["title"] == "Ferry terminal to open in March")
    assert ferry["external_url"].endswith("/a/ferry")


def test_an_empty_stream_is_a_valid_feed() -> None:
    feed = parsed(render_atom([]))
    assert feed.entries == []
    doc = render_json([])
    jsonschema.validate(doc, JSON_FEED_SCHEMA)
    assert doc["items"] == []


# -- JSON Feed 1.1, against a schema written from https://www.jsonfeed.org/version/1.1/ -------------

RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
STRING = {"type": "string"}
URL = {"type": "string", "pattern": r"^https?://\S+$"}
DATE = {"type": "string", "pattern": RFC3339}
EXTENSIONS = {"^_": {"type": "object"}}  # custom objects: names start with "_"
AUTHOR = {  # "must include at least one of" name, url, avatar
    "type": "object",
    "properties": {"name": STRING, "url": URL, "avatar": URL},
    "anyOf": [{"required": ["name"]}, {"required": ["url"]}, {"required": ["avatar"]}],
    "patternProperties": EXTENSIONS,
    "additionalProperties": False,
}
ATTACHMENT = {
    "type": "object", "required": ["url", "mime_type"],
    "properties": {"url": URL, "mime_type": STRING, "title": STRING, "size_in_bytes": {"type": "number"}, "duration_in_seconds": {"type": "number"}},
}
ITEM = {
    "type": "object",
    "required": ["id"],
    "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],  # "one must be present"
    "properties": {
        "id": {"type": "string", "minLength": 1},  # a string, even where it is a number
        "url": URL, "external_url": URL, "title": STRING, "content_html": STRING, "content_text": STRING, "summary": STRING,
        "image": URL, "banner_image": URL, "date_published": DATE, "date_modified": DATE,
        "authors": {"type": "array", "items": AUTHOR, "minItems": 1}, "tags": {"type": "array", "items": STRING}, "language": STRING,
        "attachments": {"type": "array", "items": ATTACHMENT},
    },
    "patternProperties": EXTENSIONS,
    "additionalProperties": False,  # a misspelt field, or 1.0's singular "author", is a mistake here
}
JSON_FEED_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": STRING, "home_page_url": URL, "feed_url": URL, "description": STRING, "user_comment": STRING, "next_url": URL,
        "icon": URL, "favicon": URL, "authors": {"type": "array", "items": AUTHOR}, "language": STRING, "expired": {"type": "boolean"},
        "hubs": {"type": "array", "items": {"type": "object", "required": ["type", "url"]}},
        "items": {"type": "array", "items": ITEM},
    },
    "patternProperties": EXTENSIONS,
    "additionalProperties": False,
}


def test_json_feed_follows_the_specification(stream: Stream) -> None:
    stream.grow()
    stories = stream.stories()
    raw = json_feed(stories, base_url=None, title="News stories", updated=NOW)
    raw.decode("utf-8")  # "JSON Feed files must be served using the same MIME type and be UTF-8"
    doc = json.loads(raw)
    jsonschema.Draft202012Validator.check_schema(JSON_FEED_SCHEMA)
    jsonschema.validate(doc, JSON_FEED_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert [i["id"] for i in doc["items"]] == [story_entry_id(s) for s in stories]
    assert len({i["id"] for i in doc["items"]}) == len(doc["items"]) == 3
    for item, s in zip(doc["items"], stories, strict=True):
        assert datetime.fromisoformat(item["date_modified"]) == s.updated_at
        assert datetime.fromisoformat(item["date_published"]) == s.first_reported_at
        assert item["date_modified"] >= item["date_published"]
        assert [a["name"] for a in item["authors"]] == list(s.sources)
        assert [v["source"] for v in item["_aggregator"]["variants"]] == [v.source for v in s.variants]
    assert "home_page_url" not in doc and "feed_url" not in doc  # files: no server to name


def test_the_schema_catches_what_it_should() -> None:
    """The schema is strict enough to fail the mistakes it is there for."""
    good = {"version": "https://jsonfeed.org/version/1.1", "title": "t",
            "items": [{"id": "1", "content_text": "x", "date_published": "2026-05-14T12:00:00Z", "authors": [{"name": "A"}]}]}
    jsonschema.validate(good, JSON_FEED_SCHEMA)
    for broken in (
        {**good, "version": "https://jsonfeed.org/version/1"},
        {k: v for k, v in good.items() if k != "title"},
        {**good, "items": [{"id": 1, "content_text": "x"}]},
        {**good, "items": [{"id": "1"}]},
        {**good, "items": [{"id": "1", "content_text": "x", "date_published": "2026-05-14 12:00:00"}]},
        {**good, "items": [{"id": "1", "content_text": "x", "authors": [{}]}]},
        {**good, "items": [{"id": "1", "content_text": "x", "author": {"name": "A"}}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, JSON_FEED_SCHEMA)


# -- hostile feed text -------------------------------------------------------------------------------


def assert_inert_fragment(html: str) -> None:
    doc = lxml.html.fragment_fromstring(html, create_parent="div")
    assert not list(doc.iter("script", "img", "svg", "iframe", "object", "embed", "form", "base", "style", "meta", "link"))
    for el in doc.iter():
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), f"event handler attribute {name}={value!r}"
            if name in ("href", "src", "action"):
                assert value.lower().startswith(("http://", "https://")), f"{name}={value!r}"


def entry_contents(atom: bytes) -> list[str]:
    """The Atom entries' content as written (before feedparser's own sanitizing)."""
    root = lxml.etree.fromstring(atom)
    assert not root.findall(".//{http://www.w3.org/1999/xhtml}script") and not root.findall(".//script")
    return [c.text or "" for c in root.iter(f"{ATOM_NS}content")]


def test_hostile_feed_text_from_a_polled_feed_is_inert(stream: Stream) -> None:
    stories = stream.stories()
    hostile = next(s for s in stories if "alert(1)" in s.title or "Tram trials" in s.title)
    atom = render_atom(stories)
    for content in entry_contents(atom):
        assert_inert_fragment(content)
    entry = next(e for e in parsed(atom).entries if e.id == story_entry_id(hostile))
    assert "javascript" not in str(entry.get("links", ""))  # its article's javascript: link is no link
    assert "<script" not in atom.decode()
    doc = render_json(stories)
    item = next(i for i in doc["items"] if i["id"] == story_entry_id(hostile))
    assert "url" not in item and all(v["url"] is None for v in item["_aggregator"]["variants"])
    assert_inert_fragment(item["content_html"])


PAYLOAD = "<script>alert(1)</script>\x00\x0b \u202eevil"
BAD_URLS = ["javascript:alert(1)", " javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "https://ok.example.org/\x01x",
            'https://ok.example.org/"onmouseover="alert(1)', "//evil.example/x"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_hostile_titles_and_urls_are_neutralised_in_both_formats(url: str) -> None:
    """Straight from a Story, as no feed parser would hand it over: control characters XML cannot
    carry, a bidi override, markup in every text field, links that are not http(s)."""
    s = hand_story(66, PAYLOAD, [
        hand_variant(7, 66, source=PAYLOAD, title=PAYLOAD, url=url, text=PAYLOAD + " text",
                     summary_html=f'<p onclick="alert(2)">Sum<img src=x onerror=alert(3)><a href="{xml_escape(url)}">more</a></p>'),
        hand_variant(8, 66, "report", source="Plain Source", title="Plain " + PAYLOAD, url=url, minutes=5, similarity=0.3),
    ])
    expected_title = "<script>alert(1)</script> evil"  # as text: controls and the override dropped
    for base in (None, BASE):
        atom = atom_feed([s], base_url=base, title=PAYLOAD, updated=NOW)
        text = atom.decode()
        assert "<script" not in text and "\x00" not in text and "\u202e" not in text
        feed = parsed(atom)
        (entry,) = feed.entries
        assert entry.title_detail.type == "text/plain"
        assert_inert_fragment(entry_contents(atom)[0])
        hrefs = [link.get("href") for link in lxml.etree.fromstring(atom).iter(f"{ATOM_NS}link")]
        assert hrefs == ([] if base is None else [f"{BASE}/", f"{BASE}/feeds/stories.atom", f"{BASE}/stories/66"])
        assert [a.name for a in entry.authors] == [expected_title, "Plain Source"]
        raw = json_feed([s], base_url=base, title=PAYLOAD, updated=NOW)
        doc = json.loads(raw)
        jsonschema.validate(doc, JSON_FEED_SCHEMA)
        (item,) = doc["items"]
        assert item["title"] == expected_title  # JSON Feed titles are plain text: shown, never run
        assert doc["title"] == expected_title
        assert_inert_fragment(item["content_html"])
        assert "url" not in item or item["url"] == f"{BASE}/stories/66"
        assert "external_url" not in item
        assert "javascript" not in raw.decode().lower()
        assert "\\u0000" not in raw.decode()


# -- the files beside the digest -----------------------------------------------------------------------


def test_the_digest_writes_the_feeds_beside_it(stream: Stream, tmp_path) -> None:
    from helpers import cli

    files = stream.agg.write_digest(NOW.date())
    assert files.atom == files.html.parent / "stories.atom" and files.json == files.html.parent / "stories.json"
    assert files.index == files.html.parent / "index.html"
    feed = parsed(files.atom.read_bytes())
    assert [e.id for e in feed.entries] == [story_entry_id(s) for s in stream.stories()]
    assert feed.feed.id.startswith("urn:uuid:") and str(tmp_path) not in files.atom.read_text(encoding="utf-8")  # no local path
    jsonschema.validate(json.loads(files.json.read_bytes()), JSON_FEED_SCHEMA)
    assert 'href="stories.atom"' in files.index.read_text(encoding="utf-8")
    again = stream.agg.write_digest(NOW.date())
    assert again.atom.read_bytes() == files.atom.read_bytes()  # nothing new: the same feed, its time included
    result = cli("digest", "--config", str(tmp_path / "feeds.yaml"))
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("index.html", "stories.atom", "stories.json")), result.stdout


# -- what an entry says: copies of whom, figures that differ -------------------------------------------

STRIKE = ("A missile strike killed at least 12 people in a village in Idlib province early on Tuesday, the Syrian Observatory "
          "for Human Rights said. Rescuers pulled bodies from the rubble of two houses.")


def test_an_entry_says_whose_text_the_copies_carry_and_which_figures_differ() -> None:
    later = STRIKE.replace("killed at least 12 people", "killed 15 people")
    s = hand_story(80, "Strike in Idlib", [
        hand_variant(1, 80, source="Global Wire", title="Strike kills 12", url="https://wire.example.com/s", text=STRIKE),
        hand_variant(2, 80, "copy", source="Harbour Gazette", title="Idlib strike", url="https://gazette.example.org/s", minutes=30,
                     text=STRIKE, similarity=0.95),
        hand_variant(3, 80, "report", source="Coast Radio", title="Toll rises to 15", url="https://radio.example.net/s", minutes=90,
                     text=later, similarity=0.6),
    ])
    (content,) = entry_contents(atom_feed([s], base_url=None, title="t", updated=NOW))
    text = lxml.html.fragment_fromstring(content, create_parent="div").text_content()
    assert "3 outlets (1 copy of Global Wire): Global Wire, Harbour Gazette, Coast Radio" in text
    assert "Harbour Gazette (2024-03-05 22:30, copy of Global Wire, similarity 0.95)" in text
    assert "Figures differ: killed: 12 (Syrian Observatory for Human Rights, 2 outlets) · 15" in text and "newest: 15" in text
    (item,) = json.loads(json_feed([s], base_url=None, title="t", updated=NOW))["items"]
    assert [v["copy_of"] for v in item["_aggregator"]["variants"]] == [None, "Global Wire", None]
    assert "copy of Global Wire" in item["content_html"] and "newest: 15" in item["content_html"]
    agreed = hand_story(81, "Strike in Idlib", [hand_variant(4, 81, source="Global Wire", text=STRIKE)])
    (content,) = entry_contents(atom_feed([agreed], base_url=None, title="t", updated=NOW))
    assert "<p>Figures: killed 12</p>" in content
