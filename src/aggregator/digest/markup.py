"""Feed text made safe to show: in Markdown (escaped so that it reads as text), in HTML (a
canonical report's short summary through nh3; links only if they are absolute http(s)), cut to an
excerpt, and rid of the bidirectional controls that could make a title read differently from its
link. The digest, the story feeds and the web pages use these."""

from __future__ import annotations

import re
from collections.abc import Callable

import nh3
from markupsafe import Markup, escape

from ..models import Variant
from ..text import html_to_text

EXCERPT_CHARS = 360

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

# Explicit embeddings, overrides and isolates: feed text carrying them could reverse the text
# around it (a title that reads differently from its link). Right-to-left text itself is kept,
# laid out by the browser (dir="auto", <bdi>).
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


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


def without_bidi_controls(value: object) -> object:
    """A template's ``finalize``: text without explicit bidirectional embeddings and overrides."""
    if isinstance(value, Markup):
        return Markup(str.translate(value, _BIDI_CONTROLS))  # noqa: S704 (removing characters keeps it safe)
    if isinstance(value, str):
        return value.translate(_BIDI_CONTROLS)
    return value


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
