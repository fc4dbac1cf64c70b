"""Article page bytes → text and metadata (trafilatura), and the feed-content fallback.

trafilatura is only ever given bytes that our fetcher got under its limits.
"""

from __future__ import annotations

import logging
import re
import warnings
from datetime import datetime, timezone

import trafilatura

from .models import Entry, PageText
from .text import clean_text

log = logging.getLogger(__name__)

_HTML_LANG = re.compile(rb"<html[^>]*?\slang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)


def extract_page(content: bytes, url: str, fast: bool = False, known_title: str | None = None) -> PageText | None:
    """Main text of an article page, or None when the page has no recognisable article.

    With ``known_title`` (the feed gave the title and the date), trafilatura's metadata pass is
    skipped: the page's title and date would be discarded, and that pass (htmldate and friends)
    is about half the cost of a page; the text is the same. The page title then is None and the
    known title is the one removed from the start of the text."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lxml FutureWarnings from inside trafilatura
        try:
            doc = trafilatura.bare_extraction(
                content, url=url, with_metadata=known_title is None, include_comments=False, include_tables=False, fast=fast
            )
        except Exception as exc:  # hostile HTML must not take the daemon down
            log.warning("%s: extraction failed: %s: %s", url, type(exc).__name__, exc)
            return None
    if doc is None:
        return None
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    title = (data.get("title") or "").strip() or None
    text = clean_text((data.get("text") or "").replace("\n", "\n\n"))
    lead = title or (known_title or "").strip()
    if lead and text.startswith(lead):
        text = text[len(lead):].lstrip()
    if not text:
        return None
    lang_match = _HTML_LANG.search(content[:4096])
    return PageText(
        text=text,
        title=title,
        published=_page_date(data.get("date")),
        lang=(data.get("language") or (lang_match.group(1).decode().lower() if lang_match else None)),
    )


def needs_page(entry: Entry, min_chars: int) -> bool:
    """True when the feed's own text is too short to stand for the article."""
    return bool(entry.url) and len(entry.text) < min_chars


def choose_text(own: str, page: PageText | None) -> tuple[str, bool]:
    """Pick the fuller of page text and the feed's own text; returns (text, came_from_page)."""
    if page is not None and len(page.text) > len(own):
        return page.text, True
    return own, False


def _page_date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
