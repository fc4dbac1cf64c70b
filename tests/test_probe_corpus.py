"""feedparser's and trafilatura's own test files through our parse and extract: nothing escapes.

Reads ../shared/probe-corpus/ when present (never copied into this repository); skipped otherwise.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.extract import extract_page
from aggregator.parse import parse_feed
from helpers import SHARED

CORPUS = SHARED / "probe-corpus"
PER_FILE_SECONDS = 5.0
PER_FILE_PEAK_BYTES = 200 * 1024 * 1024

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} not present: probe corpus run skipped"),
]


def files(folder: str, suffixes: tuple[str, ...]) -> list[Path]:
    root = CORPUS / folder
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes) if root.is_dir() else []


def bounded(func, *args):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    started = time.perf_counter()
    try:
        return func(*args)
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert elapsed < PER_FILE_SECONDS, f"{args[0]} took {elapsed:.1f}s"
        assert peak < PER_FILE_PEAK_BYTES, f"{args[0]} peaked at {peak / 1e6:.0f} MB"


def test_every_feedparser_test_file_parses_or_fails_cleanly():
    paths = files("feeds", (".xml", ".json", ".rdf", ".atom", ".rss"))
    assert len(paths) > 1000
    outcomes = {"entries": 0, "empty": 0, "parse_error": 0}
    for path in paths:
        try:
            parsed = bounded(parse_feed, str(path), path.read_bytes(), {"content-type": "application/xml"})
        except ParseError as exc:
            assert str(path) in str(exc)  # the one-line error names the feed
            outcomes["parse_error"] += 1
            continue
        outcomes["entries" if parsed.entries else "empty"] += 1
    assert outcomes["entries"] > 300, outcomes


def test_every_trafilatura_test_page_extracts_or_returns_none():
    """Both calls the pipeline makes: the full one, and the one without the metadata pass (the
    feed gave title and date), which must find the same text."""
    paths = files("html", (".html", ".htm", ".xml", ".gz", ".txt", ""))
    assert len(paths) > 50
    extracted = 0
    for path in paths:
        url = f"http://127.0.0.1/{path.name}"
        page = bounded(extract_page, path.read_bytes(), url)
        lean = bounded(extract_page, path.read_bytes(), url, False, "A headline no page starts with")
        assert (lean is None) == (page is None), path.name
        if lean is not None and page is not None:  # the full call also drops the page's own title from the start
            title = page.title or ""
            assert lean.text == page.text or (lean.text.startswith(title) and lean.text[len(title) :].lstrip() == page.text), path.name
        extracted += page is not None and bool(page.text)
    assert extracted > len(paths) // 3
