"""parse_feed on real feed files: golden expectations, hopeless input, hostile bytes.

Golden files live in tests/data/golden: ``<name>.xml`` and ``<name>.expected.json``.
After a deliberate change in parsing, regenerate the expectations with

    UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/test_parse.py

and review the diff: the JSON files are the specification.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from aggregator.errors import FeedError, ParseError
from aggregator.models import ParsedFeed
from aggregator.parse import parse_feed

GOLDEN = Path(__file__).parent / "data" / "golden"
FEEDS = sorted(GOLDEN.glob("*.xml"))
CONTENT_TYPES = {"atom": "application/atom+xml", "rdf": "application/rdf+xml"}


def _headers(name: str) -> dict[str, str]:
    kind = next((ct for key, ct in CONTENT_TYPES.items() if name.startswith(key)), "application/rss+xml")
    return {"content-type": f"{kind}; charset=utf-8"}


def _as_json(parsed: ParsedFeed) -> dict[str, Any]:
    return {
        "title": parsed.title,
        "site_url": parsed.site_url,
        "lang": parsed.lang,
        "ttl_minutes": parsed.ttl_minutes,
        "has_warning": parsed.warning is not None,
        "entries": [
            {
                "guid": e.guid,
                "url": e.url,
                "title": e.title,
                "published": e.published.isoformat() if e.published else None,
                "author": e.author,
                "lang": e.lang,
                "text": e.text,
                "summary_html": e.summary_html,
            }
            for e in parsed.entries
        ],
    }


def _check_golden(feed: Path) -> None:
    """Compare with ``<name>.expected.json``; rewrite it only when UPDATE_GOLDEN=1."""
    expected_path = feed.with_name(feed.stem + ".expected.json")
    actual = _as_json(parse_feed(f"https://feeds.example/{feed.name}", feed.read_bytes(), _headers(feed.name)))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert expected_path.exists(), f"{expected_path.name} missing: run with UPDATE_GOLDEN=1 and review it"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected


def test_golden_files_are_present() -> None:
    names = {p.stem for p in FEEDS}
    assert {"rss2_guid_utm", "rdf_rss1", "atom_lang_html", "rss_no_guid", "rss_truncated"} <= names
    for feed in FEEDS:
        assert feed.with_name(feed.stem + ".expected.json").exists(), feed.name


@pytest.mark.parametrize("feed", FEEDS, ids=[p.stem for p in FEEDS])
def test_golden(feed: Path) -> None:
    _check_golden(feed)


# -- the properties the golden files pin, spelled out ------------------------------------------


def _parse_golden(name: str) -> ParsedFeed:
    path = GOLDEN / f"{name}.xml"
    return parse_feed(f"https://feeds.example/{path.name}", path.read_bytes(), _headers(path.name))


def test_rss2_guid_is_identity_and_link_loses_tracking() -> None:
    feed = _parse_golden("rss2_guid_utm")
    first = feed.entries[0]
    assert first.guid == "gazette-2024-0042"
    assert first.url == "https://gazette.example.org/news/ferry-resumes?id=42"
    assert first.published is not None and first.published.isoformat() == "2024-03-05T07:30:00+00:00"
    assert feed.ttl_minutes == 30
    assert feed.title == "Harbour Gazette & Times"
    assert "alert" not in feed.entries[1].text


def test_rss_without_guid_falls_back_to_normalized_link() -> None:
    feed = _parse_golden("rss_no_guid")
    assert [e.guid for e in feed.entries] == [
        "http://valley.example.com/articles/Bridge-Reopens",
        "https://valley.example.com/articles/market?day=sat",
    ]
    assert all(e.guid == e.url for e in feed.entries)


def test_atom_language_and_html_content() -> None:
    feed = _parse_golden("atom_lang_html")
    fr, en = feed.entries
    assert feed.lang == "fr"
    assert (fr.lang, en.lang) == ("fr", "en")
    assert fr.title == "Fête du lac : record d'affluence"
    assert fr.text.startswith("Plus de 20 000 visiteurs")  # &nbsp; became a space
    assert "color" not in fr.text
    # published wins over updated, and both are in UTC
    assert fr.published is not None and fr.published.isoformat() == "2024-04-01T19:45:00+00:00"


def test_truncated_feed_keeps_its_recoverable_entries_and_warns() -> None:
    feed = _parse_golden("rss_truncated")
    assert feed.warning and feed.broken  # recoverable problems are reported, not hidden: its owner has XML to fix
    assert [e.guid for e in feed.entries][:2] == ["wire-1", "wire-2"]
    assert feed.entries[1].title == "Second story survives & too"


def test_a_feed_served_as_html_is_read_and_not_called_broken() -> None:
    """A wrong Content-Type is common and harmless: a warning, but not a broken feed (poll would mark it "!")."""
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>A</title><guid>1</guid></item></channel></rss>'
    feed = parse_feed("https://site.example/rss", body, {"content-type": "text/html"})
    assert [e.guid for e in feed.entries] == ["1"]
    assert feed.warning and not feed.broken


# -- behaviour beyond the golden files -----------------------------------------------------------


def _rss(items: str, channel_extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://site.example/</link>{channel_extra}{items}</channel></rss>"
    ).encode()


def test_repeated_guid_keeps_the_first_entry() -> None:
    body = _rss(
        "<item><guid isPermaLink=\"false\">g1</guid><title>First</title><link>https://site.example/1</link></item>"
        "<item><guid isPermaLink=\"false\">g1</guid><title>Second</title><link>https://site.example/2</link></item>"
    )
    feed = parse_feed("https://site.example/rss", body, {"content-type": "application/rss+xml"})
    assert [(e.guid, e.title) for e in feed.entries] == [("g1", "First")]


def test_entry_without_guid_or_link_gets_a_stable_content_hash() -> None:
    body = _rss("<item><title>Untethered</title><description>Some words.</description></item>")
    a = parse_feed("https://site.example/rss", body, {"content-type": "application/rss+xml"})
    b = parse_feed("https://site.example/rss", body, {"content-type": "application/rss+xml"})
    assert a.entries[0].guid.startswith("sha1:")
    assert a.entries[0].guid == b.entries[0].guid
    assert a.entries[0].url is None
    redated = _rss("<item><title>Untethered</title><pubDate>Tue, 05 Mar 2024 13:00:00 GMT</pubDate><description>Some words.</description></item>")
    c = parse_feed("https://site.example/rss", redated, {"content-type": "application/rss+xml"})
    assert c.entries[0].guid == a.entries[0].guid  # a new date alone does not make it a new entry


def test_entries_without_title_or_content_are_skipped() -> None:
    body = _rss("<item><link>https://site.example/empty</link></item><item><title>Kept</title></item>")
    feed = parse_feed("https://site.example/rss", body, {"content-type": "application/rss+xml"})
    assert [e.title for e in feed.entries] == ["Kept"]


def test_guid_does_not_depend_on_where_the_feed_was_fetched() -> None:
    body = _rss("<item><guid>wire-1</guid><title>A</title><link>https://wire.example.com/a/1</link></item>")
    headers = {"content-type": "application/rss+xml"}
    old = parse_feed("https://wire.example.com/rss", body, headers).entries[0].guid
    moved = parse_feed("https://feeds.wire-cdn.example/rss", body, headers).entries[0].guid
    no_headers = parse_feed("https://wire.example.com/rss", body, None).entries[0].guid
    assert old == moved == no_headers == "wire-1"


def test_relative_links_resolve_against_the_feed_url() -> None:
    body = _rss("<item><title>A</title><link>/news/a?utm_source=x</link></item>")
    feed = parse_feed("https://site.example/feeds/main.xml", body, {"content-type": "application/rss+xml"})
    assert feed.entries[0].url == "https://site.example/news/a"


@pytest.mark.parametrize("headers", [None, {"server": "nginx", "content-length": "200"}])
def test_relative_links_resolve_without_a_content_type(headers: dict[str, str] | None) -> None:
    body = _rss("<item><title>A</title><link>/news/a?utm_source=x</link></item>")
    feed = parse_feed("https://site.example/feeds/main.xml", body, headers)
    assert feed.entries[0].url == "https://site.example/news/a"


_GREEK = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Ειδήσεις</title>'
    "<item><title>Καλημέρα κόσμε</title><link>https://gr.example/x</link><description>νέα</description></item>"
    "</channel></rss>"
).encode("iso-8859-7")


def test_charset_from_the_content_type_header_is_used() -> None:
    feed = parse_feed("https://gr.example/rss", _GREEK, {"content-type": "application/rss+xml; charset=iso-8859-7"})
    assert feed.title == "Ειδήσεις"
    assert feed.entries[0].title == "Καλημέρα κόσμε"


def test_header_names_are_case_insensitive() -> None:
    feed = parse_feed("https://gr.example/rss", _GREEK, {"Content-Type": "application/rss+xml; charset=iso-8859-7"})
    assert feed.title == "Ειδήσεις"


# -- hopeless input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><p>Our news</p></body></html>",
        b"\n\n   <!doctype HTML>\n<html lang='en'><body><h1>Home</h1></body></html>",
        b"<html><head><meta charset='utf-8'></head><body>Please enable JavaScript</body></html>",
        b"<HTML><BODY>Moved</BODY></HTML>",
    ],
)
def test_html_page_served_as_a_feed(body: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed("https://site.example/feed", body, {"content-type": "text/html; charset=utf-8"})
    assert "HTML" in str(info.value)
    assert info.value.url == "https://site.example/feed"
    assert isinstance(info.value, FeedError)


def test_html_page_with_byte_order_mark() -> None:
    with pytest.raises(ParseError, match="HTML"):
        parse_feed("https://site.example/feed", b"\xef\xbb\xbf<!DOCTYPE html><html><body>x</body></html>", {"content-type": "text/html"})


@pytest.mark.parametrize("body", [b"", b"   \n\t  \r\n"])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(ParseError, match="empty"):
        parse_feed("https://site.example/feed", body, {"content-type": "application/rss+xml"})


@pytest.mark.parametrize("body", [b'{"items": []}', b"just some text", b"\x00" * 64, bytes(range(256)) * 4])
def test_not_a_feed(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed("https://site.example/feed", body, {})


# -- hostile bytes do not crash --------------------------------------------------------------------------


def test_nul_bytes_do_not_crash_and_entries_survive() -> None:
    raw = (GOLDEN / "rss2_guid_utm.xml").read_bytes()
    body = raw.replace(b"Ferry service", b"Ferry\x00 service").replace(b"Local news", b"Local\x00\x00news")
    feed = parse_feed("https://gazette.example.org/rss", body, {"content-type": "application/rss+xml"})
    assert feed.warning
    assert feed.title == "Harbour Gazette & Times"
    assert len(feed.entries) >= 1
    for entry in feed.entries:
        assert "\x00" not in entry.title and "\x00" not in entry.text


def test_latin1_bytes_declared_as_utf8() -> None:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Café</title>'
        "<item><title>Résumé naïve</title><link>https://fr.example/x</link><description>été</description></item>"
        "</channel></rss>"
    ).encode("latin-1")
    feed = parse_feed("https://fr.example/rss", body, {"content-type": "application/rss+xml"})
    assert [e.url for e in feed.entries] == ["https://fr.example/x"]
    assert feed.entries[0].title == "Résumé naïve"  # recovered by the fallback decoder
    assert feed.warning


def test_utf8_bytes_declared_latin1_in_the_header() -> None:
    body = (GOLDEN / "atom_lang_html.xml").read_bytes()
    feed = parse_feed("https://courrier.example.fr/atom", body, {"content-type": "application/atom+xml; charset=iso-8859-1"})
    assert len(feed.entries) == 2
    assert feed.entries[1].title == "Lake festival draws record crowd"


def test_undecodable_bytes_in_a_feed_do_not_crash() -> None:
    body = _rss("<item><title>Bad XX bytes</title><link>https://site.example/b</link></item>").replace(b"XX", b"\xff\xfe")
    try:
        feed = parse_feed("https://site.example/rss", body, {"content-type": "application/rss+xml"})
    except ParseError:
        return
    assert all(isinstance(e.title, str) for e in feed.entries)


# -- a feed's template (footers repeated in every item) ---------------------------------------

_BODIES = [
    "The council approved a new harbour wall after a nine to two vote on Tuesday evening.",
    "A ferry ran aground near the north pier; all forty passengers were taken ashore safely.",
    "The town library will open on Sundays from March, the mayor announced at a press briefing.",
    "Fishermen protested outside the port authority over new quotas for cod and haddock.",
    "A storm is expected to bring gusts of up to 110 km/h to the coast overnight, forecasters said.",
]
_BACKGROUND = "The harbour has been closed to large ships since the 2019 storm damaged its entrance."


def _item(i: int, title: str, paragraphs: list[str], source: str = "", summary: str | None = None) -> str:
    content = "".join(f"<p>{p}</p>" for p in paragraphs)
    origin = f"<source url='https://{source.lower()}.example/rss'>{source}</source>" if source else ""
    described = f"<description><![CDATA[{summary}]]></description>" if summary is not None else ""
    return (f"<item><title>{title}</title><link>https://gazette.example.org/{i}</link><guid>g{i}</guid>{origin}{described}"
            f"<content:encoded><![CDATA[{content}]]></content:encoded></item>")


def _rss(items: list[str]) -> bytes:
    return ('<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>Harbour Gazette</title>{''.join(items)}</channel></rss>").encode()


def test_a_footer_every_item_repeats_is_dropped_and_the_news_kept() -> None:
    """WordPress's "The post <title> appeared first on <site>." names each item's own title; a
    comment count differs in its number. Neither is news; a paragraph two items share is."""
    items = []
    for i, body in enumerate(_BODIES):
        title = f"Harbour news item {i}"
        footer = f"The post {title} appeared first on Harbour Gazette."
        extra = [_BACKGROUND] if i < 2 else []
        items.append(_item(i, title, [body, *extra, f"{i + 3} comments", footer], summary=f"<p>{body}</p><p>{footer}</p>"))
    feed = parse_feed("https://gazette.example.org/rss", _rss(items))
    for i, entry in enumerate(feed.entries):
        expected = [_BODIES[i], _BACKGROUND] if i < 2 else [_BODIES[i]]
        assert entry.text.split("\n\n") == expected
        assert entry.summary_html == ""  # it carried the footer: the digest quotes the clean text


def test_an_aggregators_items_from_different_outlets_keep_their_shared_wire_text() -> None:
    wire = ["Rescuers pulled 12 survivors from the rubble of the collapsed market hall, officials said.",
            "The cause of the collapse is not yet known."]
    outlets = ["Wire", "Post", "Herald", "Star"]
    items = [_item(i, f"Market hall collapse ({o})", [*wire, f"Additional reporting by the {o} desk."], source=o) for i, o in enumerate(outlets)]
    feed = parse_feed("https://news.example/aggregated", _rss(items))
    assert [e.text.split("\n\n")[:2] for e in feed.entries] == [wire] * 4


def test_one_article_reposted_in_most_items_is_not_a_template() -> None:
    repost = [_BODIES[0], _BACKGROUND]
    items = [_item(i, "Harbour wall approved", repost) for i in range(4)]
    items += [_item(4 + i, f"Other news {i}", [body]) for i, body in enumerate(_BODIES[1:3])]
    feed = parse_feed("https://gazette.example.org/rss", _rss(items))
    assert [e.text for e in feed.entries[:4]] == ["\n\n".join(repost)] * 4


def test_nul_characters_are_dropped_from_every_field_a_database_stores() -> None:
    """PostgreSQL refuses NUL in text: one hostile item must not roll back a round's transaction there."""
    rss = ('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://127.0.0.1/&#0;</link><language>en&#0;</language>'
           '<item><title>Nul&#0; title</title><guid>id&#0;1</guid><author>a&#0;b</author><link>http://127.0.0.1/a&#0;</link>'
           '<description>text&#0;with nul</description></item></channel></rss>').replace("&#0;", "\x00").encode()
    json_feed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J\x00", "items": [
        {"id": "j\x001", "title": "t\x00", "content_html": "<p>x\x00y</p>", "summary": "s\x00", "authors": [{"name": "n\x00"}]}]}).encode()
    for parsed in parse_feed("http://127.0.0.1/f", rss), parse_feed("http://127.0.0.1/j", json_feed, {"Content-Type": "application/feed+json"}):
        assert parsed.entries, parsed
        for entry in parsed.entries:
            values = [parsed.title, parsed.site_url, parsed.lang, *(v for v in vars(entry).values() if isinstance(v, str))]
            assert not any("\x00" in v for v in values if v), entry
