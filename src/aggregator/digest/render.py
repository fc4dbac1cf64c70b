"""The digest's pages: the Markdown and HTML of a day and the HTML of the index, from Jinja2
templates (autoescaped for HTML), with each story marked "new" or "updated" for its day."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, Template, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from ..listing import kind_label, last_update, outlets_line
from ..models import Story
from .markup import excerpt, html_cleaner, make_lead, md_escape, safe_url, without_bidi_controls

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'"
INDEX_NAME = "index.html"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # not strftime: no locale


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
                      finalize=without_bidi_controls)
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
    from ..facts import story_facts
    from ..listing import facts_brief

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

