"""Feed bytes + HTTP headers → entries: RSS and Atom with feedparser, JSON Feed (which feedparser
does not read) with the standard library's ``json``. Never given a URL."""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import html
import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin

import feedparser

from .errors import ParseError
from .models import Entry, ParsedFeed
from .text import clean_text, html_to_text, paragraph_keys, template_key
from .urls import normalize_url

log = logging.getLogger(__name__)

# An internal DTD subset is where XML entity attacks live (external entities, "billion laughs",
# quadratic blowup); no real feed needs one, so it is cut before parsing.
_DTD_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[.*?\]\s*>", re.DOTALL | re.IGNORECASE)
_DOCTYPE_SCAN = 65536
MAX_SUMMARY_HTML = 4000  # longer summaries are whole articles: the digest shows a text excerpt instead

# A paragraph that this many of a feed's items repeat, and at least this share of them, is the
# feed's template (a footer such as "The post <title> appeared first on <site>.", a newsletter
# pitch, a copyright line), not news: it is dropped from each item's text.
TEMPLATE_MIN_ITEMS = 3
TEMPLATE_SHARE = 0.5

# feedparser's headers of interest; anything else is noise to it.
_PASSED_HEADERS = ("content-type", "content-location", "content-language")

# JSON Feed (https://jsonfeed.org): its media type, the generic one servers often send instead,
# and the prefix of the ``version`` URL every JSON Feed carries (1, 1.1, and later 1.x).
JSON_FEED_TYPES = frozenset({"application/feed+json", "application/json"})
JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/", re.IGNORECASE)
NOT_JSON_FEED = "a JSON document, not an RSS or Atom feed, nor a JSON Feed (no jsonfeed.org `version` with `items`)"


def parse_feed(url: str, content: bytes, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse fetched bytes. Recoverable problems become ``warning``; hopeless input raises ParseError."""
    if not content.strip():
        raise ParseError(url, "empty response body")
    json_feed = _json_feed(url, content, headers)
    if json_feed is not None:
        return json_feed
    content = strip_dtd(content)
    # No content-location: feedparser would resolve a bare RSS <guid> ("wire-1") against the feed's
    # address, so the id would change whenever the feed moves. Links are resolved below instead.
    passed = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in _PASSED_HEADERS and k.lower() != "content-location"}
    try:
        parsed = feedparser.parse(content, response_headers=passed, sanitize_html=False, resolve_relative_uris=False)
    except Exception as exc:  # feedparser promises not to raise; belt and braces for a daemon
        raise ParseError(url, f"feed parser crashed: {type(exc).__name__}: {exc}") from None
    feed = parsed.get("feed", {})
    entries_raw = parsed.get("entries", [])
    warning = None
    broken = False
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        warning = f"{type(problem).__name__}: {problem}" if problem else "malformed feed"
        broken = not isinstance(problem, feedparser.exceptions.ThingsNobodyCaresAboutButMe)  # its name for a wrong content type or charset
    if not parsed.get("version") and not entries_raw:
        start = content.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()[:200].lower()
        if start.startswith((b"<!doctype html", b"<html")):
            reason = "an HTML page, not a feed"
        elif start.startswith((b"{", b"[")):
            reason = NOT_JSON_FEED
        else:
            reason = "not an RSS or Atom feed" + (f" ({warning})" if warning else "")
        raise ParseError(url, reason)
    feed_lang = _no_nul(feed.get("language")) or None
    entries: dict[str, Entry] = {}
    for raw in entries_raw:
        entry = _entry(raw, feed_lang, url)
        if entry is not None:
            entries.setdefault(entry.guid, entry)  # a feed listing one guid twice keeps the first
    return ParsedFeed(
        title=html_to_text(feed.get("title", "")) or None,
        site_url=_no_nul(feed.get("link")) or None,
        lang=feed_lang,
        entries=tuple(without_template(list(entries.values()))),
        repeated=repeated_paragraphs(list(entries.values())),
        warning=warning,
        ttl_minutes=_int_or_none(feed.get("ttl")),
        broken=broken,
    )


def strip_dtd(content: bytes) -> bytes:
    """Remove an internal DTD subset (entity declarations) from the document's prolog."""
    head = content[:_DOCTYPE_SCAN]
    if b"<!DOCTYPE" not in head.upper() and b"<!doctype" not in head:
        return content
    match = _DTD_SUBSET.search(content)
    if match is None or match.start() > _DOCTYPE_SCAN:
        return content
    log.info("removed an internal DTD subset of %d bytes from a feed", match.end() - match.start())
    return content[: match.start()] + content[match.end() :]


def _media_type(headers: Mapping[str, str] | None) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return ""


def _json_feed(url: str, content: bytes, headers: Mapping[str, str] | None) -> ParsedFeed | None:
    """A JSON Feed read into the records feedparser's output becomes; None when the body is not a
    JSON object (feedparser's turn: RSS and Atom never start with ``{``). A JSON object that is
    not a JSON Feed, or broken JSON, is a ParseError, as broken XML is."""
    if not content.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(content)  # bytes: UTF-8/16/32 detected, a byte order mark allowed
    except RecursionError:
        raise ParseError(url, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a number too long to convert
        raise ParseError(url, f"invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError(url, NOT_JSON_FEED)
    version = doc.get("version")
    if not (isinstance(version, str) and JSON_FEED_VERSION.match(version.strip())) and _media_type(headers) != "application/feed+json":
        raise ParseError(url, NOT_JSON_FEED)
    feed_lang = _text_field(doc, "language") or None
    feed_author = _json_authors(doc)
    entries: dict[str, Entry] = {}
    skipped = 0
    for item in doc["items"]:
        if not isinstance(item, dict):
            skipped += 1
            continue
        entry = _json_entry(item, feed_lang, feed_author, url)
        if entry is not None:
            entries.setdefault(entry.guid, entry)  # a feed listing one id twice keeps the first
    warning = f"{skipped} item(s) that are not JSON objects were skipped" if skipped else None
    return ParsedFeed(
        title=clean_text(html.unescape(_text_field(doc, "title"))) or None,
        site_url=_text_field(doc, "home_page_url").strip() or None,
        lang=feed_lang,
        entries=tuple(without_template(list(entries.values()))),
        repeated=repeated_paragraphs(list(entries.values())),
        warning=warning,
        broken=bool(skipped),
    )


def _json_entry(item: dict[str, Any], feed_lang: str | None, feed_author: str | None, base: str) -> Entry | None:
    """One JSON Feed item (https://jsonfeed.org/version/1.1): id → guid, url, title, content_html or
    content_text → text, summary, date_published (else date_modified), authors, language."""
    link = (_text_field(item, "url") or _text_field(item, "external_url")).strip()
    url = normalize_url(urljoin(base, link)) if link else None
    # Titles and summaries are plain text in JSON Feed; some publishers still escape them as HTML.
    title = clean_text(html.unescape(_text_field(item, "title")))
    content_html = _text_field(item, "content_html")
    summary = _text_field(item, "summary").strip()
    if content_html.strip():
        text = html_to_text(content_html)
    else:
        text = clean_text(_text_field(item, "content_text") or html.unescape(summary))
    if not title and not text:
        return None
    raw_id = item.get("id")
    guid = _no_nul(raw_id if isinstance(raw_id, (str, int, float)) and not isinstance(raw_id, bool) else "").strip() or url
    if not guid:  # as for RSS: the content, not the date, so a re-dated item stays the same item
        guid = "sha1:" + hashlib.sha1(f"{title}\n\n{(content_html or text)[:500]}".encode()).hexdigest()
    if summary:
        summary_html = html.escape(summary)
    else:
        summary_html = content_html.strip()
    return Entry(
        guid=guid,
        url=url,
        title=title,
        text=text,
        published=_rfc3339(item.get("date_published")) or _rfc3339(item.get("date_modified")),
        author=_json_authors(item) or feed_author,
        lang=_text_field(item, "language") or feed_lang,
        summary_html=summary_html if len(summary_html) <= MAX_SUMMARY_HTML else "",
    )


def _text_field(obj: dict[str, Any], key: str) -> str:
    """A string member (without NUL characters), or "" when it is absent or of another type."""
    value = obj.get(key)
    return _no_nul(value) if isinstance(value, str) else ""


def _json_authors(obj: dict[str, Any]) -> str | None:
    """The names of ``authors`` (JSON Feed 1.1) or of ``author`` (1.0), comma-separated."""
    found = obj.get("authors")
    if not isinstance(found, list):
        found = [obj.get("author")]
    names = [name for a in found if isinstance(a, dict) and (name := _text_field(a, "name").strip())]
    return ", ".join(names) or None


def _rfc3339(value: Any) -> datetime | None:
    """An RFC 3339 date-time in UTC (one without an offset is taken as UTC); None if unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().upper())
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _web_url(url: str) -> str | None:
    """An http(s) URL as given, or None (a ``<source>`` naming another scheme names no site)."""
    return url if url.lower().startswith(("http://", "https://")) else None


def _no_nul(value: Any) -> str:
    """Feed text as a string without NUL characters, which no text column can hold (PostgreSQL refuses them)."""
    return str(value or "").replace("\x00", "")


def _entry(raw: Any, feed_lang: str | None, base: str) -> Entry | None:
    link = _no_nul(raw.get("link")).strip()
    url = normalize_url(urljoin(base, link)) if link else None
    title = html_to_text(raw.get("title", "") or "")
    content_html = _best_content(raw)
    published = _struct_to_dt(raw.get("published_parsed") or raw.get("updated_parsed"))
    guid = _no_nul(raw.get("id")).strip() or url
    if not guid:
        if not title and not content_html:
            return None
        # Not the date: a feed that re-dates an entry (its "updated" time) would make it new again.
        # (The empty middle line keeps the ids entries without a date had before the date was left out.)
        basis = f"{title}\n\n{content_html[:500]}"
        guid = "sha1:" + hashlib.sha1(basis.encode("utf-8")).hexdigest()
    if not title and not content_html:
        return None
    lang = None
    for detail in (raw.get("content") or [{}])[0], raw.get("summary_detail") or {}:
        lang = lang or detail.get("language")
    origin = raw.get("source") or {}
    source = html_to_text(str(origin.get("title") or "")) if hasattr(origin, "get") else ""
    source_link = _no_nul(origin.get("href") or origin.get("link")).strip() if hasattr(origin, "get") else ""
    return Entry(
        source=source or None,
        source_url=_web_url(urljoin(base, source_link)) if source_link else None,
        guid=guid,
        url=url,
        title=title,
        text=html_to_text(content_html),
        published=published,
        author=_no_nul(raw.get("author")) or None,
        lang=_no_nul(lang) or feed_lang,
        summary_html=_summary(raw),
    )


def without_template(entries: Sequence[Entry]) -> list[Entry]:
    """The entries, each without the paragraphs that most items of its outlet in this feed repeat.

    A template paragraph is matched with the item's own title blanked out and digits ignored, so
    "The post <title> appeared first on <site>." and "3 comments" are found. Items are grouped by
    the outlet they name (an aggregator's feed mixes outlets: their shared wire text is news), and
    items with the same text count once (reposts of one article are not a template)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        if entry.text:
            groups[entry.source or ""].append(i)
    out = list(entries)
    for members in groups.values():
        if len(members) < TEMPLATE_MIN_ITEMS:
            continue
        keyed = {i: [(template_key(p, entries[i].title), p) for p in entries[i].text.split("\n\n")] for i in members}
        bodies = {i: "\n".join(k for k, _ in keyed[i]) for i in members}
        holders: dict[str, set[str]] = defaultdict(set)  # paragraph key -> the distinct bodies holding it
        for i in members:
            for key, _ in keyed[i]:
                holders[key].add(bodies[i])
        need = max(TEMPLATE_MIN_ITEMS, math.ceil(TEMPLATE_SHARE * len(set(bodies.values()))))
        template = {key for key, held in holders.items() if len(held) >= need}
        if not template:
            continue
        log.debug("%d template paragraph(s) dropped from the items of %s", len(template), entries[members[0]].source or "a feed")
        for i in members:
            entry = entries[i]
            kept = [p for key, p in keyed[i] if key not in template]
            if len(kept) == len(keyed[i]):
                continue
            # A summary carrying the template is not shown: the digest quotes the cleaned text instead.
            summary = entry.summary_html
            if summary and any(template_key(p, entry.title) in template for p in html_to_text(summary).split("\n\n")):
                summary = ""
            out[i] = dataclasses.replace(entry, text="\n\n".join(kept), summary_html=summary)
    return out


def repeated_paragraphs(entries: Sequence[Entry]) -> frozenset[str]:
    """The keys (``paragraph_keys``) of the paragraphs that two or more distinct items of one outlet
    in the feed hold: template, or close to being found template. A stored article whose text
    differs from its feed's new version only in such paragraphs was not revised: its feed's layout
    moved (the template step drops a footer once enough items repeat it)."""
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for entry in entries:
        if entry.text:
            for key in set(paragraph_keys(entry.text, entry.title)):
                holders[(entry.source or "", key)].add(entry.text)
    return frozenset(key for (_outlet, key), held in holders.items() if len(held) >= 2)


def _summary(raw: Any) -> str:
    """The entry's own summary HTML when it is short enough to lead a digest entry, else ""."""
    summary = _no_nul(raw.get("summary")).strip()
    return summary if len(summary) <= MAX_SUMMARY_HTML else ""


def _best_content(raw: Any) -> str:
    candidates = [c.get("value", "") for c in raw.get("content") or []]
    candidates.append(raw.get("summary", "") or "")
    return str(max(candidates, key=len))


def _struct_to_dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (OverflowError, ValueError, TypeError, OSError):
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
