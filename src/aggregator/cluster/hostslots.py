"""At most ``fetch.per_host_concurrency`` requests in flight per host over every worker of a cluster.

A host has that many slots, each a PostgreSQL advisory lock keyed (the host's hash, the slot's
number); a request holds one for as long as it is in flight, on its worker's lock connection. The
server frees a dead worker's slots with its connection. Each worker also keeps its own per-host limit
(``Fetcher``), so it asks for a slot only for requests it would send at once.

A slot a request is done with is kept a moment (``LINGER_S``) for this worker's next request to the
same host (a feed's pages come in a burst), so a burst takes and gives up its slot once, not two
statements a request. A slot in use for ``MOST_HELD_S`` is given up all the same and the worker
leaves the host's slots alone for a moment, for the other workers' turn (an advisory lock has no
queue: the worker asking again at once would win it back). The limit holds either way: a kept slot
is still held.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg

from ..errors import NetworkError
from ..store.locks import libpq_url

log = logging.getLogger(__name__)

FIRST_WAIT_S, LONGEST_WAIT_S = 0.01, 0.1  # between tries while every slot of a host is taken (doubling, jittered)
CONNECTIONS = 4  # lock connections per worker; a host's slots always go through the same one (a lock is its connection's)
LINGER_S = 0.2  # a free slot is kept this long for the worker's next request to its host
MOST_HELD_S = 2.0  # a slot held this long is given up when its request is done (other workers wait for it)...
REST_S = 0.25  # ...and the worker asks for the host's slots again only after this long


def host_key(host: str) -> int:
    """A host's 32-bit lock key (the first of the two keys; the slot's number is the second)."""
    return int.from_bytes(hashlib.sha256(f"aggregator:host:{host}".encode()).digest()[:4], "big", signed=True)


class _LockConnection:
    """One connection holding slots, its statements one at a time."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.conn: psycopg.AsyncConnection | None = None
        self.io = asyncio.Lock()
        self.held: dict[str, set[int]] = {}
        self.generation = 0  # a new connection each time (the slots held on the last one are gone)

    async def ask(self, sql: str, key: int, number: int) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                self.conn, self.held = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True), {}
                self.generation += 1
            cursor = await self.conn.execute(sql, (key, number))
            row = await cursor.fetchone()
            return bool(row and row[0])
        except psycopg.OperationalError as exc:  # the database went away: every slot held went with it
            self.conn, self.held = None, {}
            raise NetworkError("(per-host slots)", f"the cluster's database cannot be reached: {exc}") from None


class _Kept:
    """A slot held for no request, until its timer gives it up."""

    def __init__(self, number: int, since: float, generation: int, timer: asyncio.TimerHandle) -> None:
        self.number, self.since, self.generation, self.timer = number, since, generation, timer


class ClusterHostSlots:
    """The cluster's per-host slots, as one worker process takes them (see the module's docstring)."""

    def __init__(self, database_url: str, per_host: int, connections: int = CONNECTIONS,
                 linger_s: float = LINGER_S, most_held_s: float = MOST_HELD_S, rest_s: float = REST_S) -> None:
        conninfo = libpq_url(database_url)
        self.per_host = per_host
        self._connections = [_LockConnection(conninfo) for _ in range(connections)]
        self._releases: set[asyncio.Task[None]] = set()
        self._kept: dict[str, list[_Kept]] = {}
        self._linger_s, self._most_held_s, self._rest_s = linger_s, most_held_s, rest_s
        self._rest_until: dict[str, float] = {}  # hosts whose slot this worker gave up for the others' turn

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots for the block (waiting while all are taken)."""
        key = host_key(host)
        lock_conn = self._connections[key % len(self._connections)]
        loop = asyncio.get_running_loop()
        kept = self._take_kept(host, lock_conn)
        if kept is not None:
            number, since = kept
        else:
            if (rest := self._rest_until.get(host, 0.0) - loop.time()) > 0:
                await asyncio.sleep(rest)
            number, since = await self._acquire(lock_conn, host, key), loop.time()
        try:
            yield
        finally:
            if loop.time() - since < self._most_held_s:
                timer = loop.call_later(self._linger_s, self._give_up_kept, lock_conn, host, key, number)
                self._kept.setdefault(host, []).append(_Kept(number, since, lock_conn.generation, timer))
            else:
                self._rest_until[host] = loop.time() + self._rest_s
                self._give_up(lock_conn, host, key, number)
                if len(self._rest_until) > 1000:  # (hosts whose rest is over are forgotten)
                    self._rest_until = {h: t for h, t in self._rest_until.items() if t > loop.time()}

    async def aclose(self) -> None:
        for kept in self._kept.values():
            for slot in kept:
                slot.timer.cancel()
        self._kept.clear()
        if self._releases:
            await asyncio.wait(self._releases)
        for lock_conn in self._connections:
            if lock_conn.conn is not None:
                await lock_conn.conn.close()  # (the kept slots go with it)
                lock_conn.conn = None

    def _take_kept(self, host: str, lock_conn: _LockConnection) -> tuple[int, float] | None:
        """A slot this worker kept for the host: (number, held since)."""
        kept = self._kept.get(host)
        while kept:
            slot = kept.pop()
            slot.timer.cancel()
            if slot.generation == lock_conn.generation:  # (not lost with a connection since)
                return slot.number, slot.since
        return None

    def _give_up_kept(self, lock_conn: _LockConnection, host: str, key: int, number: int) -> None:
        kept = self._kept.get(host, [])
        for slot in kept:
            if slot.number == number:
                kept.remove(slot)
                if slot.generation == lock_conn.generation:
                    self._give_up(lock_conn, host, key, number)
                break
        if not kept:
            self._kept.pop(host, None)

    def _give_up(self, lock_conn: _LockConnection, host: str, key: int, number: int) -> None:
        # Released in the background: the request is done, and its caller need not wait in the
        # connection's queue (the statements of one connection still run in order).
        task = asyncio.get_running_loop().create_task(self._release(lock_conn, host, key, number))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _acquire(self, lock_conn: _LockConnection, host: str, key: int) -> int:
        wait = FIRST_WAIT_S
        while True:
            async with lock_conn.io:
                for number in range(self.per_host):
                    if number not in lock_conn.held.get(host, ()) and await lock_conn.ask("SELECT pg_try_advisory_lock(%s, %s)", key, number):
                        lock_conn.held.setdefault(host, set()).add(number)  # (after the ask: a reconnection forgets what was held)
                        return number
            await asyncio.sleep(wait * (0.5 + random.random()))
            wait = min(wait * 2, LONGEST_WAIT_S)

    async def _release(self, lock_conn: _LockConnection, host: str, key: int, number: int) -> None:
        async with lock_conn.io:
            lock_conn.held.get(host, set()).discard(number)
            if lock_conn.conn is not None:
                try:
                    await lock_conn.ask("SELECT pg_advisory_unlock(%s, %s)", key, number)
                except NetworkError:
                    pass  # the connection is gone, and the slot with it
