"""A polling round's new articles, held until the round's feeds have answered, then stored across
feeds in publication order (``Backlog``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .grouped import settle

if TYPE_CHECKING:
    from .ingest import FeedBatch

ROUND_BACKLOG = 5000  # articles a round holds before storing them (publication order holds within each group) ...
ROUND_HOLD_S = 5.0  # ... and the longest the first of them waits for the rest of the round's feeds


class Backlog:
    """A round's new articles, held until every feed of the round has answered, then stored across
    feeds in publication order: the stories a round makes do not depend on which feed answered
    first or last (a daemon's first start stores days of backlog from every feed at once). What is
    held is stored anyway once ``limit`` articles are held (memory stays bounded) or the first of
    them has waited ``hold_s`` (a slow feed, or pages still being extracted, do not keep the rest
    from being stored: progress is kept if the process dies, and users see it)."""

    def __init__(self, feeds: int, store: Callable[[list[FeedBatch]], Awaitable[list[int]]], limit: int, hold_s: float) -> None:
        self._pending = set(range(feeds))
        self._held: list[tuple[FeedBatch, asyncio.Future[int]]] = []
        self._articles = 0
        self._store = store
        self._limit = limit
        self._hold_s = hold_s
        self._timer: asyncio.TimerHandle | None = None  # stores what is held once the first of it has waited hold_s
        self._last: asyncio.Task[None] | None = None  # the latest group's write; groups are written in turn

    async def put(self, i: int, batch: FeedBatch) -> int:
        """Hold feed ``i``'s batch; returns how many of its articles were stored, once they are."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._held.append((batch, done))
        self._articles += len(batch.candidates)
        if self._timer is None:
            self._timer = loop.call_later(self._hold_s, self._flush)
        self.finish(i)
        return await done

    def finish(self, i: int) -> None:
        """Feed ``i`` has nothing more to hold (stored, unchanged or failed)."""
        self._pending.discard(i)
        if not self._pending or self._articles >= self._limit:
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held:
            group, self._held, self._articles = self._held, [], 0
            self._last = asyncio.get_running_loop().create_task(self._write(group, self._last))

    async def _write(self, group: list[tuple[FeedBatch, asyncio.Future[int]]], previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await settle(group, self._store)  # (a failure reaches every feed of the group: e.g. a locked database)
