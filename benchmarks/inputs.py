"""Synthetic inputs for the benchmarks: news-like text, article pages, feeds, signatures, a loopback site.

Everything is generated from a seed, at any size, with planted near-duplicates:

* a *vocabulary* of pseudo-words: a Zipf-distributed general lexicon, topic lexicons and
  per-event entity names, glued into sentences with English function words, so that the
  dedup index sees realistic term statistics (common words everywhere, rare names per event);
* *events*, each reported by several outlets: a ``copy`` variant (the same text with a few
  words changed and a paragraph dropped, like a wire reprint) or an independent ``report``;
* *article pages* of 400-800 words wrapped in navigation, cookie banner, related links,
  newsletter promo, comments and footer (trafilatura has to work for its text);
* *RSS 2.0 feeds* whose items carry either a short teaser (so the page gets fetched and
  extracted) or the full text;
* *synthetic signatures* (random MinHash values + term counts drawn from the same
  vocabulary) for streaming a million articles through the index without writing a
  million texts.
"""

from __future__ import annotations

import hashlib
import html
import string
import threading
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

import numpy as np

from aggregator.dedup import Deduplicator, Signature
from aggregator.dedup.rule import top_terms
from aggregator.dedup.statistics import tf as log_tf
from aggregator.dedup.tokens import STOPWORDS as _STOPWORDS
from aggregator.tools.feedserver import Request, Response, conditional

FUNCTION_WORDS = (
    "the the the the of of of and and and to to to a a in in is was for on that with as by at from "
    "it its has have had be been were are this which who said after before over under their they he she "
    "we will would could also more than about into out up but not all one new"
).split()

_ONSETS = ["b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pr", "r", "s",
           "sh", "st", "t", "tr", "v", "w", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
_CODAS = ["", "", "n", "r", "l", "s", "t", "m", "nd", "rk", "st"]


def _pseudo_words(rng: np.random.Generator, n: int, syllables: tuple[int, int], taken: set[str], add: bool = True) -> list[str]:
    out: list[str] = []
    mine: set[str] = set()
    while len(out) < n:
        k = int(rng.integers(syllables[0], syllables[1] + 1))
        w = "".join(
            _ONSETS[int(rng.integers(len(_ONSETS)))] + _VOWELS[int(rng.integers(len(_VOWELS)))] + _CODAS[int(rng.integers(len(_CODAS)))]
            for _ in range(k)
        )
        if len(w) >= 4 and w not in taken and w not in mine:
            mine.add(w)
            if add:
                taken.add(w)
            out.append(w)
    return out


@dataclass(frozen=True)
class Event:
    id: int
    topic: int
    names: tuple[str, ...]  # people, places, organisations of this event


@dataclass(frozen=True)
class Text:
    title: str
    paragraphs: tuple[str, ...]

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


class Vocabulary:
    """A seeded lexicon; ``text`` writes an article about an event, ``terms`` its term counts fast.

    Token mix: 40% function words, 45% general lexicon (Zipf over ranks offset by 50, so no
    content word is as common as "the"), 10% topic lexicon (one of ``topics``), 5% the
    event's own names (people, places: what makes two reports of one event look alike).
    """

    def __init__(self, seed: int = 7, general: int = 30000, topics: int = 60, topic_size: int = 300, event_cache: int = 20_000) -> None:
        self.rng = np.random.default_rng(seed)
        taken: set[str] = set(FUNCTION_WORDS) | set(_STOPWORDS)
        self.general = np.array(_pseudo_words(self.rng, general, (1, 3), taken))
        ranks = np.arange(1, general + 1, dtype=np.float64) + 50.0
        weights = 1.0 / ranks**1.05
        self._general_cdf = np.cumsum(weights) / weights.sum()
        self.topic_size = topic_size
        self.topic_words = np.array(_pseudo_words(self.rng, topics * topic_size, (2, 3), taken))
        self.n_topics = topics
        tw = 1.0 / (np.arange(1, topic_size + 1, dtype=np.float64) + 5.0)
        self._topic_cdf = np.cumsum(tw) / tw.sum()
        self._taken = taken
        self._function = np.array(FUNCTION_WORDS)
        self._lexicon = [str(w) for w in self.general] + [str(w) for w in self.topic_words]
        self._events: dict[int, Event] = {}
        self._event_cache = event_cache

    def event(self, event_id: int) -> Event:
        found = self._events.get(event_id)
        if found is None:
            rng = np.random.default_rng([event_id, 99])
            names = tuple(w.capitalize() for w in _pseudo_words(rng, 6, (2, 3), self._taken, add=False))
            found = Event(event_id, int(rng.integers(self.n_topics)), names)
            if len(self._events) < self._event_cache:
                self._events[event_id] = found
        return found

    def _ids(self, rng: np.random.Generator, event: Event, n: int, with_function: bool) -> np.ndarray:
        """Token ids: >=0 general, [G, G+T*topics) topic words, -1..-6 event names, -100.. function words."""
        p = np.array([0.40, 0.45, 0.10, 0.05]) if with_function else np.array([0.0, 0.75, 0.1667, 0.0833])
        kinds = rng.choice(4, size=n, p=p)
        out = np.empty(n, dtype=np.int64)
        f, g, t, e = (kinds == 0), (kinds == 1), (kinds == 2), (kinds == 3)
        out[f] = -100 - rng.integers(len(self._function), size=int(f.sum()))
        out[g] = np.searchsorted(self._general_cdf, rng.random(int(g.sum())))
        out[t] = len(self.general) + event.topic * self.topic_size + np.searchsorted(self._topic_cdf, rng.random(int(t.sum())))
        out[e] = -np.minimum(rng.geometric(0.4, size=int(e.sum())), len(event.names))
        return out

    def _word(self, event: Event, i: int) -> str:
        if i >= 0:
            return self._lexicon[i]
        if i > -100:
            return event.names[-i - 1]
        return str(self._function[-100 - i])

    def text(self, event: Event, seed: int, words: int = 600) -> Text:
        rng = np.random.default_rng([event.id, seed, 1])
        tokens = [self._word(event, int(i)) for i in self._ids(rng, event, words, True)]
        paragraphs: list[str] = []
        i = 0
        while i < len(tokens):
            sentences = []
            for _ in range(int(rng.integers(2, 5))):
                n = int(rng.integers(10, 23))
                chunk = tokens[i : i + n]
                i += n
                if not chunk:
                    break
                sentences.append(" ".join(chunk).capitalize() + ".")
            if sentences:
                paragraphs.append(" ".join(sentences))
        title_tokens = [event.names[0]] + [self._word(event, int(i)) for i in self._ids(rng, event, int(rng.integers(6, 11)), True)]
        title = string.capwords(" ".join(title_tokens))
        return Text(title, tuple(paragraphs))

    def copy_of(self, text: Text, seed: int, edit_rate: float = 0.03) -> Text:
        """A reprint: a few words swapped, maybe the last paragraph dropped, same title."""
        rng = np.random.default_rng([seed, 2])
        paras = list(text.paragraphs)
        if len(paras) > 3 and rng.random() < 0.5:
            paras.pop()
        out = []
        for p in paras:
            ws = p.split()
            for j in range(len(ws)):
                if rng.random() < edit_rate:
                    ws[j] = str(self.general[int(rng.integers(200))])
            out.append(" ".join(ws))
        return Text(text.title, tuple(out))

    def terms(self, event: Event, rng: np.random.Generator, words: int) -> tuple[tuple[str, int], ...]:
        """About what ``Deduplicator.sign`` keeps as terms for a text of ``words`` tokens, without building it."""
        ids, counts = np.unique(self._ids(rng, event, int(words * 0.6), False), return_counts=True)
        top = np.argsort(-counts, kind="stable")[:64]
        lex, names = self._lexicon, event.names
        pairs = [((lex[i] + ".")[:-1] if i >= 0 else names[-i - 1].lower(), c) for i, c in zip(ids[top].tolist(), counts[top].tolist(), strict=True)]
        return tuple(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))


class SignatureFactory:
    """Cheap, realistic-shaped signatures for streaming many articles through the index.

    MinHash values are random (a fresh article shares no shingles with the window); a
    planted copy perturbs a few percent of an earlier signature's values; term counts
    come from the same vocabulary as the real texts, so postings grow like real ones.
    """

    def __init__(self, vocab: Vocabulary, dedup: Deduplicator, seed: int = 11) -> None:
        self.dedup = dedup
        self.vocab = vocab
        self.num_perm = dedup.settings.num_perm
        self.seed = dedup.settings.seed
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _minhash(values: np.ndarray) -> np.ndarray:
        return values.astype(np.uint32)

    def fresh(self, event: Event) -> Signature:
        """A new article about ``event``."""
        words = int(self.rng.integers(400, 800))
        values = self.rng.integers(0, 2**32 - 1, size=self.num_perm, dtype=np.uint64)
        return self._signature(self._minhash(values), words, self.vocab.terms(event, self.rng, words))

    def _signature(self, minhash: np.ndarray, shingles: int, terms: tuple[tuple[str, int], ...]) -> Signature:
        """A Signature as ``Deduplicator.sign`` shapes it: hashed terms, counts, index keys, shingle hashes."""
        hashes = np.array([zlib.crc32(t.encode("utf-8")) for t, _ in terms], dtype=np.uint32)
        counts = np.array([c for _, c in terms], dtype=np.float32)
        d = self.dedup
        keys = top_terms(hashes, log_tf(counts), d.stats.idf(hashes, np.ones(len(hashes)))).astype(np.uint32)
        shingle_hashes = self.rng.integers(0, 2**32 - 1, size=shingles, dtype=np.uint64).astype(np.uint32)
        return Signature(minhash, shingles, shingle_hashes, hashes, counts, keys)

    def report(self, sig: Signature) -> Signature:
        """Another outlet's report of the same event: the same terms, other words around them."""
        words = int(self.rng.integers(400, 800))
        values = self.rng.integers(0, 2**32 - 1, size=self.num_perm, dtype=np.uint64)
        shingle_hashes = self.rng.integers(0, 2**32 - 1, size=words, dtype=np.uint64).astype(np.uint32)
        return Signature(self._minhash(values), words, shingle_hashes, sig.terms, sig.counts, sig.keys)

    def copy(self, sig: Signature) -> Signature:
        values = sig.minhash.astype(np.uint64)
        flip = self.rng.random(self.num_perm) < 0.05
        values[flip] = self.rng.integers(0, 2**32 - 1, size=int(flip.sum()), dtype=np.uint64)
        return Signature(self._minhash(values), sig.shingles, sig.shingle_hashes, sig.terms, sig.counts, sig.keys)


# -- pages and feeds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outlet:
    slug: str
    name: str
    sections: tuple[str, ...] = ("World", "Politics", "Business", "Technology", "Science", "Sport", "Culture", "Opinion")


@dataclass(frozen=True)
class Item:
    """One article as an outlet publishes it."""

    outlet: Outlet
    key: str
    event: int
    kind: str  # original / copy / report
    published: datetime
    text: Text

    @property
    def path(self) -> str:
        return f"/{self.outlet.slug}/news/{self.key}.html"


_ICON = ('<svg class="icon" viewBox="0 0 24 24" width="16" height="16"><path d="M12 2L2 7l10 5 10-5-10-5zm0 7.5L4.2 6 12 '
         '2.5 19.8 6 12 9.5z"/><circle cx="12" cy="12" r="3"/></svg>')


def render_page(item: Item, related: Sequence[str]) -> bytes:
    """A news article page (about 60-90 KB, like a real one): the text inside heavy boilerplate.

    Mega-menu, cookie banner, share bar, inline scripts and JSON-LD, a related-stories rail,
    a 24-card "more news" grid, newsletter promo, comments and a link-farm footer.
    """
    esc = html.escape
    o = item.outlet
    rel = list(related) or [item.text.title]
    menu = "".join(
        f'<li class="menu-item"><a href="/{s.lower()}">{s}</a><div class="submenu"><ul>'
        + "".join(f'<li><a href="/{s.lower()}/{k}">{esc(rel[(k + j) % len(rel)].split()[0])} {k}</a></li>' for k in range(12))
        + "</ul></div></li>"
        for j, s in enumerate(o.sections)
    )
    paras = []
    for n, p in enumerate(item.text.paragraphs):
        paras.append(f"<p>{esc(p)}</p>")
        if n == 2:
            paras.append('<figure class="inline-ad"><div class="ad-slot" data-slot="mid-1"></div><figcaption>Advertisement</figcaption></figure>')
        if n == 5:
            paras.append(f'<aside class="read-more"><span>Read more:</span> <a href="/{o.slug}/news/rm.html">{esc(rel[0])}</a></aside>')
    side = "".join(f'<li><a href="/{o.slug}/news/rel-{i}.html">{_ICON}<span>{esc(t)}</span></a></li>' for i, t in enumerate(rel[:10]))
    cards = "".join(
        f'<div class="card"><a href="/{o.slug}/news/more-{i}.html"><div class="card-img"><img src="/img/{i}.jpg" alt="" loading="lazy" '
        f'width="300" height="200"></div><div class="card-body"><span class="kicker">{o.sections[i % len(o.sections)]}</span>'
        f"<h3>{esc(rel[i % len(rel)])}</h3><p>{esc(rel[(i + 3) % len(rel)])} and more on this story.</p>"
        f'<span class="meta"><time>{i + 1}h ago</time> {_ICON}</span></div></a></div>'
        for i in range(24)
    )
    comments = "".join(
        f'<div class="comment"><div class="avatar">{_ICON}</div><span class="user">reader{i}</span><p>{esc(t)}</p>'
        f'<div class="actions"><a href="#">Reply</a> <a href="#">Report</a> <span>{i * 3} likes</span></div></div>'
        for i, t in enumerate(rel[:6])
    )
    footer = "".join(
        f'<div class="col"><h4>{s}</h4><ul>' + "".join(f'<li><a href="/{s.lower()}/f{k}">{s} {k}</a></li>' for k in range(8)) + "</ul></div>"
        for s in o.sections
    )
    when = item.published.isoformat()
    script = "".join(f"var cfg{i}={{slot:'s{i}',sizes:[[300,250],[728,90]],targeting:{{sec:'{o.sections[i % 8]}'}}}};" for i in range(40))
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(item.text.title)} | {esc(o.name)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta property="og:title" content="{esc(item.text.title)}"><meta property="og:site_name" content="{esc(o.name)}">'
        f'<meta property="og:type" content="article"><meta property="article:published_time" content="{when}">'
        f'<link rel="stylesheet" href="/static/main.css"><link rel="canonical" href="{item.path}">'
        f'<script type="application/ld+json">{{"@context":"https://schema.org","@type":"NewsArticle","headline":"{esc(item.text.title)}",'
        f'"datePublished":"{when}","publisher":{{"@type":"Organization","name":"{esc(o.name)}"}}}}</script>'
        f"<style>body{{font-family:serif}} .promo{{color:#333}} nav li{{display:inline}} .card{{width:300px}}</style>"
        f"<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments)}}{script}</script></head><body>"
        f'<div class="cookie-banner" role="dialog"><p>We use cookies to improve your experience and to show you relevant advertising. '
        f"By continuing you agree to our cookie policy.</p><button>Accept</button><button>Settings</button></div>"
        f'<div class="top-ad"><div class="ad-slot" data-slot="leaderboard"></div></div>'
        f'<header><div class="brand"><a class="logo" href="/">{_ICON}{esc(o.name)}</a></div><nav class="mega"><ul>{menu}</ul></nav>'
        f'<form class="search"><input name="q" placeholder="Search"><button>{_ICON}</button></form>'
        f'<div class="account"><a href="/login">Sign in</a> <a href="/subscribe">Subscribe</a></div></header>'
        f'<div class="breadcrumbs"><a href="/">Home</a> &gt; <a href="/{o.sections[0].lower()}">{o.sections[0]}</a></div>'
        f'<main><div class="layout"><article><header><h1>{esc(item.text.title)}</h1><p class="byline">By {esc(o.name)} staff</p>'
        f'<time datetime="{when}">{item.published:%d %B %Y %H:%M}</time></header>'
        f'<div class="share">' + "".join(f'<a href="#" class="share-{n}">{_ICON}{n}</a>' for n in ("Facebook", "X", "Email", "Copy link"))
        + f'</div><figure class="lead"><img src="/img/lead.jpg" alt="" width="960" height="540"><figcaption>Photo: agency</figcaption></figure>'
        f'<div class="article-body">{"".join(paras)}</div>'
        f'<p class="tags">Topics: ' + ", ".join(f'<a href="/{s.lower()}">{s}</a>' for s in o.sections[:4]) + "</p></article>"
        f'<aside class="rail"><h2>Most read</h2><ol>{side}</ol>'
        f'<div class="promo"><h3>Get the morning briefing</h3><p>Sign up for our newsletter and get the day\'s most important '
        f'stories in your inbox every morning, free.</p><form><input name="email"><button>Subscribe</button></form></div>'
        f'<div class="ad-slot" data-slot="rail-1"></div></aside></div>'
        f'<section class="more"><h2>More news</h2><div class="grid">{cards}</div></section>'
        f'<section class="comments"><h2>Comments ({len(rel[:6])})</h2>{comments}</section></main>'
        f'<footer><div class="cols">{footer}</div><p>&copy; 2025 {esc(o.name)}. All rights reserved.</p></footer>'
        f"<script>gtag('config','UA-000000-1');</script></body></html>"
    )
    return page.encode("utf-8")


def render_feed(outlet: Outlet, items: Sequence[Item], base_url: str, full: bool) -> bytes:
    """RSS 2.0, newest first; ``full`` puts the whole text in the item, else a one-sentence teaser."""
    entries = []
    for it in items:
        if full:
            body = "".join(f"<p>{html.escape(p)}</p>" for p in it.text.paragraphs)
        else:
            body = "<p>" + html.escape(it.text.paragraphs[0].split(". ")[0][:200]) + ".</p>"
        entries.append(
            f"<item><title>{escape(it.text.title)}</title><link>{escape(base_url + it.path)}?utm_source=rss</link>"
            f'<guid isPermaLink="false">{escape(outlet.slug)}-{escape(it.key)}</guid>'
            f"<pubDate>{format_datetime(it.published, usegmt=True)}</pubDate><description>{escape(body)}</description></item>"
        )
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(outlet.name)}</title>'
        f"<link>{escape(base_url)}/{outlet.slug}/</link><description>{escape(outlet.name)} news</description>"
        f"<language>en</language><ttl>15</ttl>{''.join(entries)}</channel></rss>"
    )
    return xml.encode("utf-8")


def plant_items(vocab: Vocabulary, outlets: Sequence[Outlet], per_outlet: int, start: datetime, span_hours: float,
                seed: int = 3, words: tuple[int, int] = (400, 800)) -> list[Item]:
    """``per_outlet`` items for each outlet. About a third of the events are covered by 2-4 outlets,
    as a wire copy (near-duplicate text) or an independent report; the rest by one outlet."""
    from datetime import timedelta

    rng = np.random.default_rng(seed)
    slots = {o.slug: per_outlet for o in outlets}
    items: list[Item] = []
    event_id = seed * 1_000_000
    while any(slots.values()):
        event_id += 1
        event = vocab.event(event_id)
        free = [o for o in outlets if slots[o.slug] > 0]
        k = 1 if rng.random() < 0.66 else int(rng.integers(2, 5))
        chosen = [free[int(i)] for i in rng.choice(len(free), size=min(k, len(free)), replace=False)]
        t0 = start + timedelta(hours=float(rng.random()) * span_hours)
        original = vocab.text(event, seed=event_id, words=int(rng.integers(*words)))
        for n, o in enumerate(chosen):
            slots[o.slug] -= 1
            if n == 0:
                kind, text = "original", original
            elif rng.random() < 0.5:
                kind, text = "copy", vocab.copy_of(original, seed=event_id * 10 + n)
            else:
                kind, text = "report", vocab.text(event, seed=event_id * 10 + n, words=int(rng.integers(*words)))
            published = t0 + timedelta(minutes=float(rng.integers(0, 240)))
            items.append(Item(o, f"e{event_id}-{n}", event_id, kind, published, text))
    return items


# -- the loopback site ----------------------------------------------------------------------------


@dataclass
class Site:
    """Request handler for one loopback host: feeds (conditional GET) and pages; counts requests in flight."""

    routes: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    hits: Counter[int] = field(default_factory=Counter)
    delay_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                threading.Event().wait(self.delay_s)  # a bounded, tiny service time so overlap is observable
            path = request.path.split("?", 1)[0]
            route = self.routes.get(path)
            if route is None:
                response = Response(404, b"not found", {"Content-Type": "text/plain"})
            else:
                body, ctype = route
                response = conditional(request, body, ctype) if "xml" in ctype else Response(200, body, {"Content-Type": ctype})
            with self._lock:
                self.hits[response.status] += 1
            return response
        finally:
            with self._lock:
                self.in_flight -= 1

    def reset_counters(self) -> None:
        with self._lock:
            self.max_in_flight = 0
            self.hits.clear()


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:12]
