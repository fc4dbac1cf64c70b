"""The daily digest: Markdown and HTML from stored stories. Files are replaced atomically.

Every piece of feed text is treated as untrusted: Jinja2 autoescapes it, links
keep only http(s) URLs, and the page's Content-Security-Policy forbids scripts.
The one piece of feed HTML shown, a canonical report's own short summary, goes
through nh3 first: a few formatting tags survive, links only if they are
absolute http(s), everything else (scripts, styles, handlers, images) is dropped.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import nh3
from jinja2 import Environment, select_autoescape
from markupsafe import Markup, escape

from .errors import StorageError
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


@dataclass(frozen=True)
class DigestFiles:
    markdown: Path
    html: Path
    stories: int


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None (no javascript:, data:, ...)."""
    if url and re.match(r"^https?://[^\s\"'<>]+$", url, re.IGNORECASE):
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
## {{ loop.index }}. {{ s.title|md }}

*{{ s.sources|length }} source{{ 's' if s.sources|length != 1 }}* · first reported by **{{ s.first_source|md }}** at {{ s.first_reported_at|local }}

{{ s.canonical.text|excerpt|md }}

{% for v in s.variants -%}
- {{ v.source|md }} ({{ v.published_at|local }}, {{ v.kind }}{% if v.kind != 'canonical' %}, similarity {{ '%.2f'|format(v.similarity) }}{% endif %}): {% if v.url|safe_url %}[{{ v.title|md }}](<{{ v.url|safe_url }}>){% else %}{{ v.title|md }}{% endif %}
{% endfor %}
{% endfor -%}
{% if not stories %}No stories for this day.
{% endif %}
_Generated {{ generated_at|local }} by aggregator._
"""

_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="referrer" content="no-referrer">
<title>News digest — {{ day }}</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h2 { font-size: 1.15rem; margin-bottom: .2rem; } .meta { color: #666; font-size: .9rem; }
ul { padding-left: 1.2rem; } li { margin: .15rem 0; } .kind { color: #888; font-size: .85rem; }
</style>
</head>
<body>
<h1>News digest — {{ day }}</h1>
<p class="meta">{{ stories|length }} stories, ranked by how many distinct outlets carry them (copies included). Times in {{ tz }}.</p>
{% for s in stories %}
<article id="story-{{ s.id }}">
<h2 dir="auto">{{ loop.index }}. <bdi>{{ s.title }}</bdi></h2>
<p class="meta">{{ s.sources|length }} source{{ 's' if s.sources|length != 1 }} · first reported by <strong>{{ s.first_source }}</strong> at {{ s.first_reported_at|local }} · story {{ s.id }}</p>
<div class="lead" dir="auto">{{ s.canonical|lead }}</div>
<ul>
{% for v in s.variants %}<li><bdi>{{ v.source }}</bdi> <span class="kind">({{ v.published_at|local }}, {{ v.kind }}{% if v.kind != 'canonical' %}, similarity {{ '%.2f'|format(v.similarity) }}{% endif %})</span>: {% if v.url|safe_url %}<a href="{{ v.url|safe_url }}" rel="noopener noreferrer nofollow"><bdi>{{ v.title }}</bdi></a>{% else %}<bdi>{{ v.title }}</bdi>{% endif %}</li>
{% endfor %}</ul>
</article>
{% else %}
<p>No stories for this day.</p>
{% endfor %}
<p class="meta">Generated {{ generated_at|local }} by aggregator.</p>
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


def _environment(tz: ZoneInfo, autoescape: bool) -> Environment:
    env = Environment(autoescape=select_autoescape(default=autoescape, default_for_string=autoescape), keep_trailing_newline=True,
                      finalize=_without_bidi_controls)
    env.filters["local"] = lambda dt: dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    env.filters["excerpt"] = excerpt
    env.filters["md"] = md_escape
    env.filters["safe_url"] = safe_url
    if autoescape:
        env.filters["lead"] = make_lead(html_cleaner())
    return env


def render_digest(day: date, stories: list[Story], tz_name: str, generated_at: datetime) -> tuple[str, str]:
    """(markdown, html) for the given stories, already ranked."""
    tz = ZoneInfo(tz_name)
    context = {"day": day.isoformat(), "stories": stories, "tz": tz_name, "generated_at": generated_at, "csp": CSP}
    markdown = _environment(tz, autoescape=False).from_string(_MARKDOWN).render(context)
    html = _environment(tz, autoescape=True).from_string(_HTML).render(context)
    return markdown, html


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
