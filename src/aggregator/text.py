"""Plain text out of HTML fragments (feed content, titles), without fetching anything."""

from __future__ import annotations

import html
import re

import lxml.html
from lxml import etree

_BLOCK_TAGS = frozenset(
    "p div br li ul ol h1 h2 h3 h4 h5 h6 blockquote pre tr table section article header footer figcaption".split()
)
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DIGITS = re.compile(r"\d+")


def clean_text(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks as one blank line, drop control characters."""
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(fragment: str) -> str:
    """Visible text of an HTML fragment, one paragraph per block element."""
    if "<" not in fragment and "&" not in fragment:
        return clean_text(fragment)
    if "<" not in fragment:
        return clean_text(html.unescape(fragment))
    try:
        root = lxml.html.fragment_fromstring(_CONTROL.sub("", fragment), create_parent="div")
    except (etree.ParserError, ValueError):
        return clean_text(html.unescape(re.sub(r"<[^>]*>", " ", fragment)))
    for bad in list(root.iter(*_DROP_TAGS)):
        bad.drop_tree()
    parts: list[str] = []
    _walk(root, parts)
    return clean_text("".join(parts))


def _walk(node: etree._Element, parts: list[str]) -> None:
    block = isinstance(node.tag, str) and node.tag in _BLOCK_TAGS
    if block:
        parts.append("\n\n")
    # Newlines in HTML source are just spaces; only block elements break paragraphs.
    if isinstance(node.tag, str) and node.text:
        parts.append(node.text.replace("\n", " "))
    for child in node:
        _walk(child, parts)
        if child.tail:
            parts.append(child.tail.replace("\n", " "))
    if block:
        parts.append("\n\n")


def paragraph_keys(text: str, title: str) -> list[str]:
    """A text's paragraphs as the template step compares them (``template_key``)."""
    return [template_key(p, title) for p in text.split("\n\n")]


def template_key(paragraph: str, title: str) -> str:
    """A paragraph as the template step compares it: casefolded, the item's title blanked out, digits ignored
    ("The post <title> appeared first on <site>." and "3 comments" are one template)."""
    key = paragraph.casefold()
    if title:
        key = key.replace(title.casefold(), "\x00")
    return _DIGITS.sub("0", key)
