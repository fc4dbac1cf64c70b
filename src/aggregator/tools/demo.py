"""``aggregator demo``: the whole pipeline on a bundled corpus, with no internet.

A loopback server replays ``demo_corpus.json`` (written for this project:
events reported by several outlets in realistic variants, plus unrelated
stories and look-alike traps) as each outlet's RSS 2.0 / RSS 1.0 / Atom feed
with article pages. The demo then drives the same facade the daemon uses
through a simulated 72 hours (each poll round at its simulated time), writes
each day's digest, and scores the stories against the corpus's own labels.
Everything lives under ``storage/demo/``.
"""

from __future__ import annotations

import asyncio
import html
import json
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

from ..config import load_config
from ..errors import StorageError
from ..factory import make_aggregator, writer_lock
from ..models import Story
from .feedserver import LoopbackServer, Request, Response, conditional
from .scoring import Scores, score

DEMO_HOURS = 72
DEMO_HEADER = "# Written by `aggregator demo`: the demo's feeds on a loopback server that lives only while the demo runs.\n"
STEP_MINUTES = 20
FEED_INTERVAL = "30m"
FEED_ITEMS = 15  # a feed lists only its latest items, like real ones


@dataclass(frozen=True)
class Outlet:
    slug: str
    name: str
    format: str
    feed_content: str
    boilerplate: tuple[str, ...]
    lang: str


@dataclass(frozen=True)
class DemoArticle:
    key: str
    event: str
    outlet: str
    hour: float
    title: str
    byline: str | None
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Corpus:
    outlets: tuple[Outlet, ...]
    articles: tuple[DemoArticle, ...]

    def outlet(self, slug: str) -> Outlet:
        return next(o for o in self.outlets if o.slug == slug)


def load_corpus() -> Corpus:
    raw: dict[str, Any] = json.loads(resources.files("aggregator.tools").joinpath("demo_corpus.json").read_text(encoding="utf-8"))
    outlets = tuple(
        Outlet(o["slug"], o["name"], o["format"], o["feed_content"], tuple(o.get("boilerplate", ())), o.get("lang", "en"))
        for o in raw["outlets"]
    )
    articles = tuple(
        DemoArticle(a["key"], a["event"], a["outlet"], float(a["hour"]), a["title"], a.get("byline"), tuple(a["paragraphs"]))
        for a in raw["articles"]
    )
    return Corpus(outlets, articles)


# -- rendering feeds and pages --------------------------------------------------------


def article_path(a: DemoArticle) -> str:
    return f"/{a.outlet}/news/{a.event}.html"


def _rfc822(dt: datetime) -> str:
    return format_datetime(dt, usegmt=True)


def render_feed(outlet: Outlet, items: Sequence[tuple[DemoArticle, datetime]], base_url: str) -> tuple[bytes, str]:
    """(bytes, content type) of an outlet's feed in its own format; items newest first."""
    def body(a: DemoArticle) -> str:
        paras = a.paragraphs if outlet.feed_content == "full" else a.paragraphs[:1]
        return "".join(f"<p>{html.escape(p)}</p>" for p in paras)

    link = f"{base_url}/{outlet.slug}/"
    if outlet.format == "atom":
        entries = "".join(
            f"<entry><id>{escape(base_url + article_path(a))}</id><title>{escape(a.title)}</title>"
            f"<link rel=\"alternate\" href=\"{escape(base_url + article_path(a))}?utm_source=atom&amp;utm_medium=feed\"/>"
            f"<published>{t.isoformat()}</published><updated>{t.isoformat()}</updated>"
            f"<author><name>{escape(a.byline or outlet.name)}</name></author>"
            f"<content type=\"html\">{escape(body(a))}</content></entry>"
            for a, t in items
        )
        updated = items[0][1].isoformat() if items else "2000-01-01T00:00:00+00:00"
        xml = (f"<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{outlet.lang}\">"
               f"<title>{escape(outlet.name)}</title><id>{escape(link)}</id><link href=\"{escape(link)}\"/>"
               f"<updated>{updated}</updated>{entries}</feed>")
        return xml.encode("utf-8"), "application/atom+xml; charset=utf-8"
    if outlet.format == "rss1":
        seq = "".join(f"<rdf:li rdf:resource=\"{escape(base_url + article_path(a))}\"/>" for a, _ in items)
        entries = "".join(
            f"<item rdf:about=\"{escape(base_url + article_path(a))}\"><title>{escape(a.title)}</title>"
            f"<link>{escape(base_url + article_path(a))}</link><description>{escape(body(a))}</description>"
            f"<dc:date>{t.isoformat()}</dc:date></item>"
            for a, t in items
        )
        xml = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" "
               "xmlns=\"http://purl.org/rss/1.0/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
               f"<channel rdf:about=\"{escape(link)}\"><title>{escape(outlet.name)}</title><link>{escape(link)}</link>"
               f"<description>{escape(outlet.name)}</description><dc:language>{outlet.lang}</dc:language>"
               f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>{entries}</rdf:RDF>")
        return xml.encode("utf-8"), "application/rdf+xml; charset=utf-8"
    entries = "".join(
        f"<item><title>{escape(a.title)}</title><link>{escape(base_url + article_path(a))}?utm_source=rss&amp;utm_campaign=feed</link>"
        f"<guid isPermaLink=\"false\">{escape(outlet.slug)}-{escape(a.event)}</guid><pubDate>{_rfc822(t)}</pubDate>"
        f"<description>{escape(body(a))}</description></item>"
        for a, t in items
    )
    xml = (f"<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>{escape(outlet.name)}</title>"
           f"<link>{escape(link)}</link><description>{escape(outlet.name)}</description><language>{outlet.lang}</language>"
           f"<ttl>15</ttl>{entries}</channel></rss>")
    return xml.encode("utf-8"), "application/rss+xml; charset=utf-8"


def render_page(outlet: Outlet, a: DemoArticle, published: datetime) -> bytes:
    """An article page with the outlet's navigation and boilerplate around the text."""
    esc = html.escape
    paras = "".join(f"<p>{esc(p)}</p>" for p in a.paragraphs)
    extra = "".join(f"<p class=\"promo\">{esc(b)}</p>" for b in outlet.boilerplate)
    byline = f"<p class=\"byline\">{esc(a.byline)}</p>" if a.byline else ""
    page = (
        f"<!DOCTYPE html><html lang=\"{outlet.lang}\"><head><meta charset=\"utf-8\"><title>{esc(a.title)} | {esc(outlet.name)}</title>"
        f"<meta property=\"article:published_time\" content=\"{published.isoformat()}\"></head><body>"
        f"<header><nav><a href=\"/\">Home</a> <a href=\"/world\">World</a> <a href=\"/business\">Business</a> "
        f"<a href=\"/sport\">Sport</a></nav></header>"
        f"<main><article><h1>{esc(a.title)}</h1>{byline}<time datetime=\"{published.isoformat()}\">{published:%d %B %Y %H:%M}</time>"
        f"{paras}</article><aside>{extra}</aside></main>"
        f"<footer><p>© {esc(outlet.name)}</p><p><a href=\"#top\">Back to top</a></p></footer></body></html>"
    )
    return page.encode("utf-8")


class DemoSite:
    """Request handler replaying the corpus as it stood at the simulated time ``now``."""

    def __init__(self, corpus: Corpus, start: datetime, feed_items: int = FEED_ITEMS) -> None:
        self.corpus = corpus
        self.feed_items = feed_items
        self.start = start
        self._now = start
        self._lock = threading.Lock()
        self._pages = {article_path(a): a for a in corpus.articles}

    @property
    def now(self) -> datetime:
        with self._lock:
            return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        with self._lock:
            self._now = value

    def published(self, a: DemoArticle) -> datetime:
        return self.start + timedelta(hours=a.hour)

    def __call__(self, request: Request) -> Response:
        now = self.now
        path = request.path.split("?", 1)[0]
        if path.startswith("/feeds/") and path.endswith(".xml"):
            slug = path[len("/feeds/") : -len(".xml")]
            try:
                outlet = self.corpus.outlet(slug)
            except StopIteration:
                return Response(404, b"no such feed")
            items = sorted(
                ((a, self.published(a)) for a in self.corpus.articles if a.outlet == slug and self.published(a) <= now),
                key=lambda it: (it[1], it[0].key), reverse=True,
            )[: self.feed_items]
            body, ctype = render_feed(outlet, items, self.base_url)
            return conditional(request, body, ctype, items[0][1] if items else None)
        article = self._pages.get(path)
        if article is None or self.published(article) > now:
            return Response(404, b"<html><body>Not found</body></html>", {"Content-Type": "text/html"})
        return Response(200, render_page(self.corpus.outlet(article.outlet), article, self.published(article)),
                        {"Content-Type": "text/html; charset=utf-8"})

    base_url = ""


@dataclass(frozen=True)
class DemoResult:
    config_path: Path
    stories: list[Story]
    digests: list[Path]
    articles: int
    rounds: int
    requests: int
    scores: Scores


def write_demo_config(directory: Path, base_url: str, corpus: Corpus) -> Path:
    config = {
        "settings": {
            "storage": ".",
            "timezone": "UTC",
            "allow_hosts": ["127.0.0.1"],
            # No jitter: it is keyed on the feed's URL, whose port changes from run to run, and the
            # demo should print the same stories and scores every time.
            "schedule": {"default_interval": FEED_INTERVAL, "min_interval": "1m", "jitter": 0},
        },
        "feeds": [{"url": f"{base_url}/feeds/{o.slug}.xml", "name": o.name, "interval": FEED_INTERVAL} for o in corpus.outlets],
    }
    path = directory / "feeds.yaml"
    path.write_text(DEMO_HEADER + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_demo(directory: Path, progress: Callable[[int, int], None] | None = None, hours: int = DEMO_HOURS) -> DemoResult:
    """Replay the corpus through the real pipeline over ``hours`` simulated hours."""
    corpus = load_corpus()
    _refuse_foreign(directory)
    with writer_lock(directory, "an aggregator daemon is running on this directory; give the demo another --dir"):
        for name in ("aggregator.db", "aggregator.db-wal", "aggregator.db-shm", "feeds.yaml"):
            (directory / name).unlink(missing_ok=True)
        shutil.rmtree(directory / "digests", ignore_errors=True)
        return _replay(directory, corpus, progress, hours)


def _refuse_foreign(directory: Path) -> None:
    """The demo starts afresh in its directory: refuse one holding a database or config it did not write."""
    config = directory / "feeds.yaml"
    ours = config.is_file() and config.read_text(encoding="utf-8", errors="replace").startswith(DEMO_HEADER)
    if not ours and ((directory / "aggregator.db").exists() or config.exists() or (directory / "digests").exists()):
        raise StorageError(
            f"{directory}: holds a database, config or digests that `aggregator demo` did not write; "
            "the demo would replace them: give it another --dir"
        )


def _replay(directory: Path, corpus: Corpus, progress: Callable[[int, int], None] | None, hours: int) -> DemoResult:
    real_now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = real_now - timedelta(hours=hours)
    site = DemoSite(corpus, start)
    clock = [start]
    with LoopbackServer(site) as server:
        site.base_url = server.base_url
        config = load_config(write_demo_config(directory, server.base_url, corpus), environ={})  # the demo keeps to its directory, whatever AGGREGATOR_STORAGE says
        agg = make_aggregator(config, clock=lambda: clock[0])  # (under the writer lock run_demo holds)
        try:
            steps = hours * 60 // STEP_MINUTES

            async def simulate() -> int:
                rounds = 0
                async with agg.new_fetcher() as fetcher:
                    for step in range(steps + 1):
                        clock[0] = site.now = start + timedelta(minutes=STEP_MINUTES * step)
                        if await agg.poll_round(clock[0], fetcher=fetcher):
                            rounds += 1
                        if progress:
                            progress(step, steps)
                return rounds

            rounds = asyncio.run(simulate())
            days = sorted({(start + timedelta(hours=h)).astimezone(config.tz).date() for h in range(0, hours + 1, 6)})
            digests = [agg.write_digest(day).markdown for day in days]
            stories = agg.stories_between(start, clock[0] + timedelta(seconds=1))
            by_url = {server.url(article_path(a)): a.event for a in corpus.articles}
            predicted = {v.url: s.id for s in stories for v in s.variants if v.url}
            gold = {url: event for url, event in by_url.items() if url in predicted}
            result = DemoResult(
                config_path=config.path or directory / "feeds.yaml",
                stories=stories,
                digests=digests,
                articles=sum(len(s.variants) for s in stories),
                rounds=rounds,
                requests=len(server.requests),
                scores=score(predicted, gold),
            )
        finally:
            agg.close()
    return result

