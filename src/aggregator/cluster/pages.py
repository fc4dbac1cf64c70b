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
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from pydantic import TypeAdapter

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


class SharedPages:
    """Pages shared by the cluster's workers (see the module's docstring); one per worker process."""

    def __init__(self, store: StoreProtocol, load: Callable[[Entry], Awaitable[PageText | None]], clock: Callable[[], datetime],
                 deadline_s: float, round_s: float = ROUND_S) -> None:
        self._store, self._load, self._clock = store, load, clock
        self._deadline_s, self._round_s = deadline_s, round_s
        self._local = RoundPages(self._shared)
        self._since = time.monotonic()

    async def get(self, entry: Entry) -> PageText | None:
        if time.monotonic() - self._since > self._round_s:  # a new round: this worker's pages are asked for anew
            self._local, self._since = RoundPages(self._shared), time.monotonic()
        return await self._local.get(entry)

    def close(self) -> None:
        """(Kept for the worker's life: a poll does not close it.)"""

    async def _shared(self, entry: Entry) -> PageText | None:
        assert entry.url
        url, now = normalize_url(entry.url), self._clock()
        stale, done = now - timedelta(seconds=self._deadline_s), now - timedelta(seconds=self._round_s)
        if await asyncio.to_thread(self._store.claim_page, url, now, stale, done):
            page = await self._load(entry)
            data = _adapter().dump_json(page)
            await asyncio.to_thread(self._store.finish_page, url, data, self._clock())
            return page
        end = time.monotonic() + self._deadline_s + 5
        while time.monotonic() < end:  # another worker fetches it
            await asyncio.sleep(WAIT_STEP_S)
            found = await asyncio.to_thread(self._store.claimed_page, url)
            if found is not None and found[0]:
                return _adapter().validate_json(found[1]) if found[1] is not None else None
        return await self._load(entry)  # its worker is gone (or slow beyond its deadline): fetched here
