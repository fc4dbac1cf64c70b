"""From what a person gives to subscribe to, the feed to poll: a feed's own address, or a site's
page that names its feeds in ``<link rel="alternate">``. Everything is fetched with the project's
fetcher (address guard, size cap, deadlines), and every candidate must parse as a feed before it
is offered. Also the spelling of subscription addresses: ``feed://`` and upper-case schemes.

Which feed of a page: the first one it links to that reads as a feed, after demoting comment
feeds (a blog post's page lists its comments' feed too) and links typed plain
``application/json`` (often a site's REST API, not a JSON Feed). The others are reported, so
they can be added by their address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from .errors import FeedError, ParseError
from .urls import normalize_url

if TYPE_CHECKING:
    from .fetch import Fetcher
    from .models import FetchResult, ParsedFeed

# The <link type>s that name a feed: RSS, Atom, RSS 1.0, JSON Feed (and its older, generic type).
FEED_LINK_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
                             "application/json"})
MAX_CANDIDATES = 5  # feeds of one page fetched to find one that reads: each is a request under the deadline
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BARE_HOST = re.compile(r"^[\w.-]+\.[\w-]+(:\d+)?(/|$)")  # example.org/rss, example.org:8080 (a dot: "mailto:x" is no host)


def subscription_url(url: str, assume_https: bool = False) -> str:
    """An address as subscriptions are written, in the form the config takes: ``feed://host/x`` →
    ``http://host/x``, ``feed:https://host/x`` and ``feed://https://host/x`` → ``https://host/x``,
    ``HTTP://host/x`` → ``http://host/x``; with ``assume_https``, a bare ``host/x`` →
    ``https://host/x``. Other schemes are left as they are, for the config to refuse by name."""
    url = url.strip()
    if url[:5].lower() == "feed:":
        rest = url[5:]
        if rest[:2] == "//" and _SCHEME.match(rest[2:]):  # feed://https://host/x
            rest = rest[2:]
        url = rest if _SCHEME.match(rest) else "http://" + rest.removeprefix("//")
    match = _SCHEME.match(url)
    if match:
        return match.group(1).lower() + url[len(match.group(1)):]
    if assume_https and _BARE_HOST.match(url):
        return "https://" + url
    return url


@dataclass(frozen=True)
class Found:
    """The feed to subscribe to."""

    url: str  # its address; where a permanent redirect led, if it did
    title: str | None  # the feed's own title
    page: str | None = None  # the page it was found on, when the address given was a page
    others: tuple[str, ...] = ()  # the page's other feeds, not checked
    warning: str | None = None  # the feed reads, but is malformed


async def find_feed(fetcher: Fetcher, url: str) -> Found:
    """The feed at ``url``, or the main feed the page at ``url`` links to. Raises FetchError (blocked
    address, HTTP status, network) or ParseError (neither a feed nor a page linking to one)."""
    from .parse import parse_feed

    result = await fetcher.fetch_feed(url)
    try:
        parsed = parse_feed(result.final_url, result.content, result.headers)
    except ParseError as exc:
        candidates = alternates(result.content, result.final_url)
        if not candidates:
            raise ParseError(url, f"{exc.message}; and no <link rel=\"alternate\"> in it names an RSS, Atom or JSON feed") from None
    else:
        return _found(url, result, parsed)
    failures: list[str] = []
    for candidate in candidates[:MAX_CANDIDATES]:
        try:
            feed_result = await fetcher.fetch_feed(candidate)
            parsed = parse_feed(feed_result.final_url, feed_result.content, feed_result.headers)
        except FeedError as exc:
            failures.append(str(exc))
            continue
        others = tuple(c for c in candidates if c != candidate)
        return _found(candidate, feed_result, parsed, page=result.final_url, others=others)
    tried = min(len(candidates), MAX_CANDIDATES)
    raise ParseError(url, f"the page links to {len(candidates)} feed(s), and none of the {tried} tried reads as one: {failures[0]}")


def _found(url: str, result: FetchResult, parsed: ParsedFeed, page: str | None = None, others: tuple[str, ...] = ()) -> Found:
    return Found(result.permanent_url or url, parsed.title, page, others, parsed.warning if parsed.broken else None)


def alternates(content: bytes, base: str) -> list[str]:
    """The feed addresses an HTML page names in ``<link rel="alternate" type="...">``, absolute
    (against ``<base href>`` and then ``base``), http(s) only, each once, the main ones first."""
    import lxml.html
    from lxml import etree

    try:
        doc = lxml.html.document_fromstring(content)
    except (etree.ParserError, ValueError):  # empty or not markup at all
        return []
    base_href = next((b.get("href", "").strip() for b in doc.iter("base") if b.get("href")), "")
    if base_href:
        base = urljoin(base, base_href)
    found: dict[str, tuple[bool, bool, str]] = {}  # normalised address -> (a comments feed, generic JSON, address)
    for link in doc.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";", 1)[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" not in rels or kind not in FEED_LINK_TYPES or not href:
            continue
        target = subscription_url(urljoin(base, href))
        if urlsplit(target).scheme not in ("http", "https"):
            continue
        comments = "comment" in (link.get("title") or "").lower() or "comment" in urlsplit(target).path.lower()
        found.setdefault(normalize_url(target), (comments, kind == "application/json", target))
    return [target for *_, target in sorted(found.values(), key=lambda f: f[:2])]  # stable: page order within each rank
