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

Modules: ``markup`` (feed text made safe: Markdown escaping, the sanitized lead, excerpts, http(s)
links only), ``render`` (the templates and the pages they make), ``files`` (the directory: day
files, neighbours' links, the index, atomic writes).
"""

from .files import ATOM_FILE, JSON_FILE, DigestFiles, digest_days, relink, write_atomically, write_day, write_index
from .markup import EXCERPT_CHARS, excerpt, html_cleaner, make_lead, md_escape, safe_url, without_bidi_controls
from .render import CSP, INDEX_NAME, DayMark, IndexDay, day_mark, day_nav, render_digest, render_index

__all__ = [
    "ATOM_FILE",
    "CSP",
    "EXCERPT_CHARS",
    "INDEX_NAME",
    "JSON_FILE",
    "DayMark",
    "DigestFiles",
    "IndexDay",
    "day_mark",
    "day_nav",
    "digest_days",
    "excerpt",
    "html_cleaner",
    "make_lead",
    "md_escape",
    "relink",
    "render_digest",
    "render_index",
    "safe_url",
    "without_bidi_controls",
    "write_atomically",
    "write_day",
    "write_index",
]
