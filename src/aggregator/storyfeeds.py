"""The deduplicated stream as feeds: an Atom feed and a JSON Feed 1.1 of stories, one entry per story.

Both are rendered from ``Story`` records (canonical text loaded), for the web app, which serves them
at ``/feeds/stories.atom`` and ``/feeds/stories.json`` (``base_url`` given: entries link to its
``/stories/{id}`` pages), and for the files written beside the digest (``base_url`` None: entries
link to the canonical article).

An entry's id is :func:`story_entry_id`: a ``urn:uuid:`` that stays the same while the story gains
variants, changes canonical or retitles, and whichever of the two formats or places serves it.
``updated`` is the story's ``updated_at``, which moves when it gains a variant; ``published`` its
first report.

Feed text is untrusted here as in the digest: titles and outlet names are text (Atom escapes them,
JSON is JSON), links keep only absolute http(s) URLs, and the entry's HTML is built escaped and then
sanitized with the digest's nh3 cleaner. Characters XML 1.0 cannot carry (C0 controls, lone
surrogates) and the bidi controls the digest removes are dropped from every string.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from .digest import ATOM_FILE, JSON_FILE, excerpt, html_cleaner, make_lead, safe_url
from .facts import story_facts
from .listing import copy_of, facts_brief, kind_label, last_update, outlets_line
from .models import Story, Variant

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_PATH = "/feeds/stories.atom"
JSON_PATH = "/feeds/stories.json"
FILE_TITLE = "News stories"
WINDOW = timedelta(hours=48)  # the feeds hold the stories with a report this recent (``Library.feed_stories``)

# Fixed for good: every story id and feed id is derived from it, so changing it changes them all.
_NAMESPACE = uuid.UUID("61343f52-41b1-4a4f-8d23-8edb4ef35fd6")

# Not allowed in XML 1.0 (lxml refuses them): C0 controls but tab, newline and carriage return,
# surrogates, U+FFFE/U+FFFF. With them, the digest's bidi embeddings, overrides and isolates.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")


def clean_text(value: str) -> str:
    """``value`` without the characters a feed must not carry (see the module docstring)."""
    return _UNSAFE_CHARS.sub("", value)


def _founder(story: Story) -> Variant:
    # The article that started the story: the lowest article id (articles are inserted before the
    # story they start or join, and members are never removed), whatever the canonical is now.
    return min(story.variants, key=lambda v: v.article_id)


def story_entry_id(story: Story) -> str:
    """The story's id in both feeds: ``urn:uuid:`` + a name-based UUID of its story id and its
    founding article (id and the microsecond it was first seen). Stable for the story's life; two
    databases give the same id only if a story of the same number was started by an article of the
    same number seen at the same microsecond."""
    founder = _founder(story)
    name = f"story/{story.id}/{founder.article_id}/{founder.first_seen_at.astimezone(timezone.utc).isoformat()}"
    return uuid.uuid5(_NAMESPACE, name).urn


def feed_id_for(place: str) -> str:
    """A feed's own id derived from where it lives (a server's feed URL, a directory's path)."""
    return uuid.uuid5(_NAMESPACE, f"feed/{place}").urn


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _base(base_url: str | None) -> str | None:
    return base_url.rstrip("/") if base_url else None


def _entry_url(story: Story, base: str | None) -> str | None:
    if base is not None:
        return f"{base}/stories/{story.id}"
    return safe_url(story.canonical.url)


def _outlets(story: Story) -> str:
    return f"{outlets_line(story)}: {', '.join(story.sources)}"


class _Renderer:
    """The entry HTML of stories: escaped, then sanitized with the digest's cleaner."""

    def __init__(self, tz_name: str) -> None:
        self.tz = ZoneInfo(tz_name)
        self.tz_name = tz_name
        self.cleaner = html_cleaner()
        self.lead = make_lead(self.cleaner)

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def content_html(self, story: Story) -> str:
        parts = [
            Markup("<p>First reported by <strong>%s</strong> at %s (%s) · %s.</p>")
            % (story.first_source, self.local(story.first_reported_at), self.tz_name, last_update(story, self.tz)),
            Markup("<p>%s</p>") % _outlets(story),
        ]
        if figures := facts_brief(story_facts(story)):  # (the variants' text is loaded: the excerpt needs it)
            parts.append(Markup("<p>%s</p>") % figures)
        parts += [self.lead(story.canonical), Markup("<ul>")]
        for v in story.variants:
            url = safe_url(v.url)
            title = Markup('<a href="%s">%s</a>') % (url, v.title) if url else escape(v.title)
            similarity = "" if v.kind == "canonical" else f", similarity {v.similarity:.2f}"
            parts.append(Markup("<li>%s (%s, %s%s): %s</li>") % (v.source, self.local(v.published_at), kind_label(story, v), similarity, title))
        parts.append(Markup("</ul>"))
        return clean_text(self.cleaner.clean(str(Markup("").join(parts))))


def atom_feed(
    stories: Sequence[Story], *, base_url: str | None, title: str, updated: datetime,
    feed_id: str | None = None, tz_name: str = "UTC",
) -> bytes:
    """An Atom feed (RFC 4287) of ``stories``, in the order given, as UTF-8 bytes.

    ``base_url``: the web app's root URL; entries then link to ``{base_url}/stories/{id}``, and the
    feed to itself at ``{base_url}/feeds/stories.atom``. None: entries link to the canonical
    article. ``feed_id``: the feed's own id (default: derived from its URL, else from ``title``).
    ``tz_name``: the time zone of the times written in the entries' text. Stories need their
    canonical text loaded (``with_text=True``) for the excerpt.
    """
    from feedgen.feed import FeedGenerator

    base = _base(base_url)
    render = _Renderer(tz_name)
    fg = FeedGenerator()
    self_url = f"{base}{ATOM_PATH}" if base else None
    fg.id(feed_id or feed_id_for(self_url or f"title/{title}"))
    fg.title(clean_text(title))
    fg.updated(updated)
    fg.generator("aggregator")
    if base:
        fg.link(href=f"{base}/", rel="alternate", type="text/html")
        fg.link(href=self_url, rel="self", type="application/atom+xml")
    for story in stories:
        fe = fg.add_entry(order="append")  # (feedgen prepends by default)
        fe.id(story_entry_id(story))
        fe.title(clean_text(story.title) or "(untitled)")
        fe.updated(story.updated_at)
        fe.published(story.first_reported_at)
        fe.author([{"name": clean_text(source)} for source in story.sources])
        url = _entry_url(story, base)
        if url:
            # One link per entry: feedgen 1.0 drops an entry link's rel, type and title (its issue
            # #135), so each link it writes is an alternate. The variants are linked in the content.
            fe.link(href=url)
        fe.content(render.content_html(story), type="html")
    return bytes(fg.atom_str(pretty=True))


def json_feed(
    stories: Sequence[Story], *, base_url: str | None, title: str, updated: datetime,
    feed_id: str | None = None, tz_name: str = "UTC",
) -> bytes:
    """A JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) of ``stories``, in the order given, as
    UTF-8 bytes. Arguments as for :func:`atom_feed`. ``updated`` is not a JSON Feed field (items carry
    their own ``date_modified``); it is accepted so both calls read alike. ``feed_id`` is unused:
    JSON Feed identifies a feed by its ``feed_url``, written when ``base_url`` is given."""
    import orjson

    del updated, feed_id
    base = _base(base_url)
    render = _Renderer(tz_name)
    feed: dict[str, Any] = {"version": JSON_FEED_VERSION, "title": clean_text(title)}
    if base:
        feed["home_page_url"] = f"{base}/"
        feed["feed_url"] = f"{base}{JSON_PATH}"
    feed["description"] = "One item per story: reports of one event from many outlets, deduplicated."
    feed["items"] = [_json_item(story, base, render) for story in stories]
    return orjson.dumps(feed, option=orjson.OPT_INDENT_2) + b"\n"


def _json_item(story: Story, base: str | None, render: _Renderer) -> dict[str, Any]:
    item: dict[str, Any] = {"id": story_entry_id(story)}
    url = _entry_url(story, base)
    if url:
        item["url"] = url
    canonical_url = safe_url(story.canonical.url)
    if base and canonical_url:
        item["external_url"] = canonical_url  # the page is ours; the story's canonical report is elsewhere
    item["title"] = clean_text(story.title)
    item["content_html"] = render.content_html(story)
    text = excerpt(story.canonical.text)
    if text:
        item["summary"] = clean_text(text)
    item["date_published"] = _rfc3339(story.first_reported_at)
    item["date_modified"] = _rfc3339(story.updated_at)
    item["authors"] = [{"name": clean_text(source)} for source in story.sources]
    # An extension object (JSON Feed allows keys starting with "_"): the variants, for readers that
    # want them as data rather than as the content's list.
    item["_aggregator"] = {
        "story_id": story.id,
        "variants": [
            {"source": clean_text(v.source), "title": clean_text(v.title), "url": safe_url(v.url), "kind": v.kind,
             "copy_of": clean_text(of) if (of := copy_of(story, v)) is not None else None,
             "similarity": round(v.similarity, 3), "date_published": _rfc3339(v.published_at)}
            for v in story.variants
        ],
    }
    return item


def write_feed_files(directory: Path, stories: Sequence[Story], *, updated: datetime, tz_name: str,
                     title: str = FILE_TITLE) -> tuple[Path, Path]:
    """``stories.atom`` and ``stories.json`` in ``directory``, each replaced atomically; entries link
    to the canonical articles (no server to link to). The Atom feed's id derives from the
    directory's path (hashed: the files may be published, the path stays private)."""
    from .digest import write_atomically

    feed_id = feed_id_for(f"dir/{directory.resolve()}")
    atom_path, json_path = directory / ATOM_FILE, directory / JSON_FILE
    write_atomically(atom_path, atom_feed(stories, base_url=None, title=title, updated=updated, feed_id=feed_id, tz_name=tz_name).decode())
    write_atomically(json_path, json_feed(stories, base_url=None, title=title, updated=updated, feed_id=feed_id, tz_name=tz_name).decode())
    return atom_path, json_path
