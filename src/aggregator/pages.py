"""A polling round's article pages (``RoundPages``): each page fetched and extracted once per round,
however many of the round's feeds list it (a publisher's section feeds overlap: 3 pages were
fetched 41 times over 54 feeds in one round)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from .models import Entry, PageText
from .urls import normalize_url

ROUND_PAGES = 5000  # finished pages a round remembers; beyond this the oldest are forgotten (then fetched again if asked)


class Pages(Protocol):
    """Where a poll gets its entries' article pages: ``RoundPages``, or a cluster's ``SharedPages``."""

    async def get(self, entry: Entry) -> PageText | None: ...

    def close(self) -> None: ...


class RoundPages:
    """The article pages of one round, by normalised URL. Feeds asking for a page that is being
    fetched await that one fetch and extraction; a page done (its text, or None when it could not be
    fetched or held no article) is reused for the rest of the round. It lives as long as the round:
    ``close()`` at its end. ``load(entry)`` fetches and extracts the entry's page.

    The first feed to ask decides how the page is extracted: a feed that gives the entry's title
    and date has the metadata pass skipped (``extract_page``), and a later feed sharing the page
    then gets its text without the page's title and date (its own are used)."""

    def __init__(self, load: Callable[[Entry], Awaitable[PageText | None]], limit: int = ROUND_PAGES) -> None:
        self._load = load
        self._limit = limit
        self._pages: dict[str, asyncio.Task[PageText | None]] = {}

    async def get(self, entry: Entry) -> PageText | None:
        """The entry's page: fetched now, or the round's fetch of it (in flight or done)."""
        assert entry.url
        key = normalize_url(entry.url)
        task = self._pages.get(key)
        if task is None:
            self._forget_oldest()
            task = self._pages[key] = asyncio.get_running_loop().create_task(_run(self._load, entry))
        # Shielded: one feed's poll being cancelled must not cancel the page the others wait for.
        return await asyncio.shield(task)

    def close(self) -> None:
        """The round is over: stop what no feed waits for any more, and forget the pages."""
        for task in self._pages.values():
            task.cancel()  # no-op for the finished ones
        self._pages.clear()

    def _forget_oldest(self) -> None:
        if len(self._pages) < self._limit:
            return
        for key in [k for k, t in self._pages.items() if t.done()][: len(self._pages) - self._limit + 1]:
            del self._pages[key]


async def _run(load: Callable[[Entry], Awaitable[PageText | None]], entry: Entry) -> PageText | None:
    return await load(entry)
