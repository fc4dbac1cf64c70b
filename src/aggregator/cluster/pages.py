"""A cluster's article pages (``SharedPages``): a page that several feeds list is fetched and
extracted once, whichever workers poll those feeds. A worker's own jobs share one fetch in memory
(``RoundPages``); across workers, the first to ask claims the page in the database and leaves its
text there, and the others wait for it. A claim left unfinished (its worker died) goes stale after
the fetch deadline and is taken over; a page is fetched again once a round's time has passed (a
revision of the article may be there).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from pydantic import TypeAdapter

from ..grouped import Grouped
from ..models import Entry, PageText
from ..pages import RoundPages
from ..urls import normalize_url

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..store.interface import StoreProtocol

ROUND_S = 600.0  # a page is fetched once per this long (about a round: the default interval is 15 min)
WAIT_STEP_S = 0.1  # how often a waiting worker looks for another's page


@cache
def _adapter() -> TypeAdapter[PageText | None]:
    return TypeAdapter(PageText | None)


def pack(page: PageText | None) -> bytes:
    """A page's extracted text as ``page_claims`` keeps it: JSON (``null``: no article there), zlib'd
    (a third of the bytes: less for the database to write, and PostgreSQL need not compress it)."""
    return zlib.compress(_adapter().dump_json(page), 1)


def unpack(data: bytes) -> PageText | None:
    return _adapter().validate_json(zlib.decompress(data) if data[:1] == b"\x78" else data)  # (plain JSON: a worker of before)


class SharedPages:
    """Pages shared by the cluster's workers (see the module's docstring); one per worker process.
    Its claims, finished pages and looks at others' claims are each grouped (``Grouped``): the pages
    a feed lists are claimed in one statement, not one transaction each."""

    def __init__(self, store: StoreProtocol, load: Callable[[Entry], Awaitable[PageText | None]], clock: Callable[[], datetime],
                 deadline_s: float, round_s: float = ROUND_S) -> None:
        self._store, self._load, self._clock = store, load, clock
        self._deadline_s, self._round_s = deadline_s, round_s
        self._local = RoundPages(self._shared)
        self._since = time.monotonic()
        self._claim: Grouped[str, bool] = Grouped(self._claim_group)
        self._finish: Grouped[tuple[str, bytes], None] = Grouped(self._finish_group)
        self._release: Grouped[str, None] = Grouped(self._release_group)
        self._look: Grouped[str, tuple[bool, bytes | None] | None] = Grouped(self._look_group)

    async def get(self, entry: Entry) -> PageText | None:
        if time.monotonic() - self._since > self._round_s:  # a new round: this worker's pages are asked for anew
            self._local, self._since = RoundPages(self._shared), time.monotonic()
        return await self._local.get(entry)

    def close(self) -> None:
        """(Kept for the worker's life: a poll does not close it.)"""

    async def _shared(self, entry: Entry) -> PageText | None:
        assert entry.url
        url = normalize_url(entry.url)
        end = time.monotonic() + self._deadline_s + 5
        while time.monotonic() < end:
            if await self._claim(url):
                try:
                    page = await self._load(entry)
                except BaseException:
                    await self._release(url)  # another worker may take it at once, not once the claim is stale
                    raise
                await self._finish((url, pack(page)))
                return page
            while time.monotonic() < end:  # another worker fetches it
                await asyncio.sleep(WAIT_STEP_S)
                found = await self._look(url)
                if found is None:
                    break  # its worker gave it up: claimed again
                if found[0]:
                    return unpack(found[1]) if found[1] is not None else None
        return await self._load(entry)  # its worker is gone (or slow beyond its deadline): fetched here

    async def _claim_group(self, urls: list[str]) -> list[bool]:
        now = self._clock()
        stale, done = now - timedelta(seconds=self._deadline_s), now - timedelta(seconds=self._round_s)
        won = await asyncio.to_thread(self._store.claim_pages, urls, now, stale, done)
        first = {url: i for i, url in reversed(list(enumerate(urls)))}  # (a page asked for twice in one group: fetched once)
        return [url in won and first[url] == i for i, url in enumerate(urls)]

    async def _finish_group(self, pages: list[tuple[str, bytes]]) -> list[None]:
        await asyncio.to_thread(self._store.finish_pages, pages, self._clock())
        return [None] * len(pages)

    async def _release_group(self, urls: list[str]) -> list[None]:
        await asyncio.to_thread(self._store.release_pages, urls)
        return [None] * len(urls)

    async def _look_group(self, urls: list[str]) -> list[tuple[bool, bytes | None] | None]:
        found = await asyncio.to_thread(self._store.claimed_pages, urls)
        return [found.get(url) for url in urls]
