"""The daily digest: Markdown and HTML from stored stories, and the digest directory's index page.
Files are replaced atomically.

Each story is marked "new" (first reported on the digest's day) or "updated" (first reported on an
earlier day, so it was in an earlier digest; the variants published on this day are marked new).
Both use publication times, as the choice of a day's stories does. Each HTML day links to the days
before and after it that have a digest file, and to ``index.html``, which lists them all; the links
of the neighbouring days are rewritten when a day is added between them.

Every piece of feed text is treated as untrusted: Jinja2 autoescapes it, links
keep only http(s) URLs, and the page's Content-Security-Policy forbids scripts.
The one piece of feed HTML shown, a canonical report's own short summary, goes
through nh3 first: a few formatting tags survive, links only if they are
absolute http(s), everything else (scripts, styles, handlers, images) is dropped.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import nh3
from jinja2 import Environment, Template, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape

from .errors import StorageError
from .listing import kind_label, last_update, outlets_line
from .models import Story, Variant
from .text import html_to_text

EXCERPT_CHARS = 360
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'"

LEAD_TAGS = frozenset({"a", "abbr", "b", "blockquote", "br", "cite", "code", "em", "i", "li", "ol", "p", "q", "s", "strong", "sub", "sup", "u", "ul"})
DROP_WITH_CONTENT = frozenset({"script", "style", "template", "iframe", "object", "embed", "svg", "math", "noscript", "title", "textarea"})

# What Markdown reads as markup anywhere in a line: escapes, code, emphasis, links and images (a
# bracket escaped, "(" and "!" are plain), raw HTML and autolinks. Hyphens, parentheses, dots and
# hashes inside a sentence stay as they are: "Syria - strike (12 killed)" needs no backslash.
_MD_INLINE = re.compile(r"([\\`*_\[\]<])")
# What starts a block at the beginning of a line (the excerpt stands alone on its line): a heading,
# a quote, a list item ("- ", "+ ", "1986. "), a setext underline or a thematic break.
_MD_LEADING = re.compile(r"^(?:([#>+\-=])|(\d{1,9})([.)]))")
_MD_TRAILING_HASHES = re.compile(r"(?<= )(#+)$")  # a heading's closing sequence: "Vote now #" would lose its "#"


INDEX_NAME = "index.html"
ATOM_FILE, JSON_FILE = "stories.atom", "stories.json"  # the story feeds beside the digests (storyfeeds.py), linked from the index
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.html$")
_NAV = re.compile(r'<nav class="days">.*?</nav>', re.DOTALL)  # only our own markup: feed text is escaped
_STORY_COUNT = re.compile(rb'<html lang="en" data-stories="(\d+)"')
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # not strftime: no locale


@dataclass(frozen=True)
class DigestFiles:
    """What a digest write produced: the day's files and story count, the index, the story feeds."""

    markdown: Path
    html: Path
    stories: int
    index: Path | None = None
    atom: Path | None = None
    json: Path | None = None


@dataclass(frozen=True)
class DayMark:
    """How a story stands on a digest's day: ``new`` (first reported that day) or ``updated`` (first
    reported on ``since``, an earlier day); ``fresh``: its variants published that day."""

    mark: Literal["new", "updated"]
    since: date
    fresh: frozenset[int]  # article ids


def day_mark(story: Story, start: datetime, end: datetime, tz: ZoneInfo) -> DayMark:
    """The story's mark for the day [start, end). Publication times decide, as they decide which
    stories a day's digest holds: a story first reported before ``start`` was in an earlier one."""
    first = min(v.published_at for v in story.variants)
    fresh = frozenset(v.article_id for v in story.variants if start <= v.published_at < end)
    return DayMark("updated" if first < start else "new", first.astimezone(tz).date(), fresh)


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None (no javascript:, data:, control characters, ...)."""
    if url and re.match(r"^https?://[^\s\"'<>\x00-\x1f\x7f]+$", url, re.IGNORECASE):
        return url
    return None


def md_escape(text: str) -> str:
    """Text for the Markdown digest, on one line, read as text by any CommonMark renderer."""
    flat = _MD_INLINE.sub(r"\\\1", " ".join(text.split()))
    flat = _MD_TRAILING_HASHES.sub(lambda m: "\\#" * len(m[1]), flat)
    return _MD_LEADING.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", flat)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    # End on a word boundary, unless that throws away most of the excerpt: scripts written without
    # spaces (Chinese, Japanese, Thai) have no word boundary to look for.
    at_space = cut.rsplit(" ", 1)[0]
    return (at_space if len(at_space) >= limit // 2 else cut) + " …"


def _keep_attribute(tag: str, attr: str, value: str) -> str | None:
    if tag == "a" and attr == "href":
        return safe_url(value.strip())  # relative, javascript:, data: ... links lose their href
    return value


def make_lead(cleaner: nh3.Cleaner) -> Callable[[Variant], Markup]:
    """The canonical report's feed summary, sanitized, when it is short; else an escaped excerpt of its text."""

    def lead(variant: Variant) -> Markup:
        if variant.summary_html:
            shown = html_to_text(variant.summary_html)
            if shown and len(shown) <= 2 * EXCERPT_CHARS:
                return Markup(cleaner.clean(variant.summary_html))  # noqa: S704 (nh3 output is the sanitized form)
        return Markup("<p>%s</p>") % escape(excerpt(variant.text))

    return lead


def html_cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(LEAD_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={"a": {"href", "title"}, "abbr": {"title"}},
        attribute_filter=_keep_attribute,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


_MARKDOWN = """\
# News digest — {{ day }}

{{ stories|length }} stories, ranked by how many distinct outlets carry them (copies included). Times in {{ tz }}.

{% for s in stories -%}
{% set m = marks[s.id] -%}
## {{ loop.index }}. {{ s.title|md }}

*{{ s|outlets|md }}* · first: **{{ s.first_source|md }}** at {{ s.first_reported_at|local }} · {{ s|last_update }} · {% if m.mark == 'new' %}new story{% else %}updated: continues from {{ m.since }}{% if m.fresh %}, {{ m.fresh|length }} new article{{ 's' if m.fresh|length != 1 }} this day{% endif %}{% endif %}

{% if facts[s.id] %}{{ facts[s.id]|md }}

{% endif %}{{ s.canonical.text|excerpt|md }}

{% for v in s.variants -%}
- {{ v.source|md }} ({{ v.published_at|local }}, {{ kind_label(s, v)|md }}{% if v.kind != 'canonical' %}, similarity {{ '%.2f'|format(v.similarity) }}{% endif %}{% if m.mark == 'updated' and v.article_id in m.fresh %}, new this day{% endif %}): {% if v.url|safe_url %}[{{ v.title|md }}](<{{ v.url|safe_url }}>){% else %}{{ v.title|md }}{% endif %}
{% endfor %}
{% endfor -%}
{% if not stories %}No stories for this day.
{% endif %}
_Generated {{ generated_at|local }} by aggregator._
"""

# Light and dark (the reader's system setting), readable on a phone; no external resources.
_STYLE = """\
:root { color-scheme: light dark; --fg: #222; --bg: #fff; --muted: #666; --faint: #888; --link: #0b57d0; --visited: #6a3ea1;
  --new-fg: #137333; --new-bg: #e6f4ea; --upd-fg: #8a5a00; --upd-bg: #fef7e0; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e3e3e3; --bg: #131416; --muted: #a8abb0; --faint: #8c9096; --link: #8ab4f8; --visited: #c58af9;
    --new-fg: #81c995; --new-bg: #0f3d22; --upd-fg: #fdd663; --upd-bg: #3f2e00; }
}
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: var(--fg);
  background: var(--bg); overflow-wrap: anywhere; }
a { color: var(--link); } a:visited { color: var(--visited); }
h2 { font-size: 1.15rem; margin-bottom: .2rem; } .meta { color: var(--muted); font-size: .9rem; }
ul { padding-left: 1.2rem; } li { margin: .15rem 0; } .kind { color: var(--faint); font-size: .85rem; }
.facts { font-size: .9rem; margin: .2rem 0; }
.mark { display: inline-block; padding: 0 .4em; border-radius: .3em; font-size: .75rem; font-weight: 600; letter-spacing: .03em;
  text-transform: uppercase; }
.mark.new { color: var(--new-fg); background: var(--new-bg); } .mark.updated { color: var(--upd-fg); background: var(--upd-bg); }
nav.days { display: flex; flex-wrap: wrap; justify-content: space-between; gap: .3rem 1rem; margin: 1rem 0; }
@media (max-width: 32rem) { body { margin: 1rem auto; font-size: 15px; } h1 { font-size: 1.4rem; } ul { padding-left: 1rem; } }
"""

_HEAD = """\
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
"""

_HTML = """\
<!DOCTYPE html>
<html lang="en" data-stories="{{ stories|length }}">
<head>
""" + _HEAD + """\
<title>News digest — {{ day }}</title>
<style>
{{ style }}</style>
</head>
<body>
{{ nav }}
<h1>News digest — {{ day }}</h1>
<p class="meta">{{ stories|length }} stories, ranked by how many distinct outlets carry them (copies included). Times in {{ tz }}.</p>
{% for s in stories %}{% set m = marks[s.id] %}
<article id="story-{{ s.id }}" class="{{ m.mark }}">
<h2 dir="auto">{{ loop.index }}. <bdi>{{ s.title }}</bdi></h2>
<p class="meta">{% if m.mark == 'new' %}<span class="mark new">new</span>{% else %}<span class="mark updated">updated</span> continues from {{ m.since }}{% if m.fresh %}, {{ m.fresh|length }} new article{{ 's' if m.fresh|length != 1 }} this day{% endif %}{% endif %} · {{ s|outlets }} · first: <strong>{{ s.first_source }}</strong> at {{ s.first_reported_at|local }} · {{ s|last_update }} · story {{ s.id }}</p>
{% if facts[s.id] %}<p class="facts" dir="auto">{{ facts[s.id] }}</p>
{% endif %}<div class="lead" dir="auto">{{ s.canonical|lead }}</div>
<ul>
{% for v in s.variants %}<li{% if m.mark == 'updated' and v.article_id in m.fresh %} class="fresh"{% endif %}><bdi>{{ v.source }}</bdi> <span class="kind">({{ v.published_at|local }}, {{ kind_label(s, v) }}{% if v.kind != 'canonical' %}, similarity {{ '%.2f'|format(v.similarity) }}{% endif %})</span>: {% if v.url|safe_url %}<a href="{{ v.url|safe_url }}" rel="noopener noreferrer nofollow"><bdi>{{ v.title }}</bdi></a>{% else %}<bdi>{{ v.title }}</bdi>{% endif %}{% if m.mark == 'updated' and v.article_id in m.fresh %} <span class="mark new">new</span>{% endif %}</li>
{% endfor %}</ul>
</article>
{% else %}
<p>No stories for this day.</p>
{% endfor %}
<p class="meta">Generated {{ generated_at|local }} by aggregator.</p>
{{ nav }}
</body>
</html>
"""

_INDEX = """\
<!DOCTYPE html>
<html lang="en">
<head>
""" + _HEAD + """\
<title>News digests</title>
{% if atom %}<link rel="alternate" type="application/atom+xml" title="Stories (Atom)" href="{{ atom }}">
{% endif %}{% if json %}<link rel="alternate" type="application/feed+json" title="Stories (JSON Feed)" href="{{ json }}">
{% endif %}<style>
{{ style }}</style>
</head>
<body>
<h1>News digests</h1>
<p class="meta">{{ days|length }} day{{ 's' if days|length != 1 }}, newest first.{% if atom or json %} The latest stories as a feed:
{% if atom %}<a href="{{ atom }}">Atom</a>{% endif %}{% if atom and json %} · {% endif %}{% if json %}<a href="{{ json }}">JSON Feed</a>{% endif %}.{% endif %}</p>
<ul class="days">
{% for d in days %}<li><a href="{{ d.day }}.html">{{ d.weekday }} {{ d.day }}</a><span class="meta">{% if d.stories is not none %} — {{ d.stories }} stor{{ 'ies' if d.stories != 1 else 'y' }}{% endif %}{% if d.markdown %} · <a href="{{ d.day }}.md">Markdown</a>{% endif %}</span></li>
{% endfor %}</ul>
{% if not days %}<p>No digests yet.</p>
{% endif %}<p class="meta">Generated {{ generated_at|local }} by aggregator. Times in {{ tz }}.</p>
</body>
</html>
"""


# Explicit embeddings, overrides and isolates: feed text carrying them could reverse the text
# around it (a title that reads differently from its link). Right-to-left text itself is kept,
# laid out by the browser (dir="auto", <bdi>).
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def _without_bidi_controls(value: object) -> object:
    if isinstance(value, Markup):
        return Markup(str.translate(value, _BIDI_CONTROLS))  # noqa: S704 (removing characters keeps it safe)
    if isinstance(value, str):
        return value.translate(_BIDI_CONTROLS)
    return value


@pass_context
def _local(context: Context, moment: datetime) -> str:
    """A time in the page's zone (the context's ``tzinfo``)."""
    return moment.astimezone(context["tzinfo"]).strftime("%Y-%m-%d %H:%M")


@pass_context
def _last_update(context: Context, story: Story) -> str:
    return last_update(story, context["tzinfo"])


@functools.cache
def _template(source: str, autoescape: bool) -> Template:
    """Each template compiled once (compiling is most of a small page's time)."""
    return _environment(autoescape).from_string(source)


def _environment(autoescape: bool) -> Environment:
    env = Environment(autoescape=select_autoescape(default=autoescape, default_for_string=autoescape), keep_trailing_newline=True,
                      finalize=_without_bidi_controls)
    env.filters["local"] = _local
    env.filters["excerpt"] = excerpt
    env.filters["md"] = md_escape
    env.filters["safe_url"] = safe_url
    env.filters["outlets"] = outlets_line
    env.filters["last_update"] = _last_update
    env.globals["kind_label"] = kind_label
    if autoescape:
        env.filters["lead"] = make_lead(html_cleaner())
    return env


def day_nav(prev_day: date | None, next_day: date | None) -> Markup:
    """The links between days: the one before, the index, the one after (empty places kept, so
    each link stays on its side)."""
    before = Markup('<a href="%s.html" rel="prev">← %s</a>') % (prev_day, prev_day) if prev_day else Markup("<span></span>")
    after = Markup('<a href="%s.html" rel="next">%s →</a>') % (next_day, next_day) if next_day else Markup("<span></span>")
    return Markup('<nav class="days">%s <a href="%s">All days</a> %s</nav>') % (before, INDEX_NAME, after)


def render_digest(day: date, stories: list[Story], tz_name: str, generated_at: datetime, *,
                  prev_day: date | None = None, next_day: date | None = None) -> tuple[str, str]:
    """(markdown, html) for the given stories, already ranked; ``prev_day`` and ``next_day``: the
    days with a digest either side, for the HTML's links (the index is always linked)."""
    tz = ZoneInfo(tz_name)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    marks = {s.id: day_mark(s, start, end, tz) for s in stories}
    from .facts import story_facts
    from .listing import facts_brief

    facts = {s.id: facts_brief(story_facts(s)) for s in stories}  # (variants without text give none)
    context = {"day": day.isoformat(), "stories": stories, "marks": marks, "facts": facts, "tz": tz_name, "tzinfo": tz, "generated_at": generated_at, "csp": CSP,
               "style": Markup(_STYLE), "nav": day_nav(prev_day, next_day)}  # noqa: S704 (our own constant)
    markdown = _template(_MARKDOWN, autoescape=False).render(context)
    html = _template(_HTML, autoescape=True).render(context)
    return markdown, html


@dataclass(frozen=True)
class IndexDay:
    day: date
    stories: int | None  # None: a file that does not say (written before the count was recorded)
    markdown: bool

    @property
    def weekday(self) -> str:
        return _WEEKDAYS[self.day.weekday()]


def render_index(days: list[IndexDay], tz_name: str, generated_at: datetime, *, atom: str | None = None, json: str | None = None) -> str:
    """The index page: every day's digest, in the order given (newest first), and the story feeds'
    file names when there are any."""
    context = {"days": days, "tz": tz_name, "tzinfo": ZoneInfo(tz_name), "generated_at": generated_at, "csp": CSP, "style": Markup(_STYLE),  # noqa: S704
               "atom": atom, "json": json}
    return _template(_INDEX, autoescape=True).render(context)


def digest_days(directory: Path) -> list[date]:
    """The days that have an HTML digest in ``directory``, oldest first."""
    found = []
    try:
        names = [p.name for p in directory.iterdir()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    for name in names:
        if m := _DAY_FILE.match(name):
            try:
                found.append(date.fromisoformat(m[1]))
            except ValueError:  # 2024-02-30.html: not ours
                continue
    return sorted(found)


def _neighbours(days: list[date], day: date) -> tuple[date | None, date | None]:
    before = [d for d in days if d < day]
    after = [d for d in days if d > day]
    return (before[-1] if before else None), (after[0] if after else None)


def _story_count(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    m = _STORY_COUNT.search(head)
    return int(m[1]) if m else None


def relink(path: Path, prev_day: date | None, next_day: date | None) -> bool:
    """Point an existing day page's links at these neighbours; False if it needed no change (or is
    missing, or from a version without the links)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: cannot read: {exc}") from None
    nav = str(day_nav(prev_day, next_day))
    relinked = _NAV.sub(lambda _: nav, text)
    if relinked == text:
        return False
    write_atomically(path, relinked)
    return True


def write_index(directory: Path, tz_name: str, generated_at: datetime) -> Path:
    """Rewrite ``index.html`` from the day pages in ``directory`` (their counts read from their first bytes)."""
    days = [IndexDay(d, _story_count(directory / f"{d}.html"), (directory / f"{d}.md").exists()) for d in reversed(digest_days(directory))]
    feeds = {kind: name for kind, name in (("atom", ATOM_FILE), ("json", JSON_FILE)) if (directory / name).exists()}
    path = directory / INDEX_NAME
    write_atomically(path, render_index(days, tz_name, generated_at, **feeds))
    return path


def write_day(directory: Path, day: date, stories: list[Story], tz_name: str, generated_at: datetime) -> DigestFiles:
    """Write a day's ``YYYY-MM-DD.md`` and ``.html`` (linked to the days either side that have
    one), point those neighbours' links at it, and rewrite the index. Each file atomically."""
    days = sorted(set(digest_days(directory)) | {day})
    prev_day, next_day = _neighbours(days, day)
    markdown, html = render_digest(day, stories, tz_name, generated_at, prev_day=prev_day, next_day=next_day)
    md_path, html_path = directory / f"{day.isoformat()}.md", directory / f"{day.isoformat()}.html"
    write_atomically(md_path, markdown)
    write_atomically(html_path, html)
    for neighbour in (prev_day, next_day):
        if neighbour is not None:
            relink(directory / f"{neighbour}.html", *_neighbours(days, neighbour))
    return DigestFiles(md_path, html_path, len(stories), index=write_index(directory, tz_name, generated_at))


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` so readers see the old file or the new one, never half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # mkstemp makes the file private (0600); a digest is meant to be read (by a web server,
            # another user): it gets what a plainly created file would (0666 less the umask).
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
