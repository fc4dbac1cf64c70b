"""At most ``fetch.per_host_concurrency`` requests in flight per host over every worker of a cluster.

A host has that many slots, each a PostgreSQL advisory lock keyed (the host's hash, the slot's
number); a request holds one for as long as it is in flight, on its worker's lock connection. The
server frees a dead worker's slots with its connection. Each worker also keeps its own per-host limit
(``Fetcher``), so it asks for a slot only for requests it would send at once.
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

    async def ask(self, sql: str, key: int, number: int) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                self.conn, self.held = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True), {}
            cursor = await self.conn.execute(sql, (key, number))
            row = await cursor.fetchone()
            return bool(row and row[0])
        except psycopg.OperationalError as exc:  # the database went away: every slot held went with it
            self.conn, self.held = None, {}
            raise NetworkError("(per-host slots)", f"the cluster's database cannot be reached: {exc}") from None


class ClusterHostSlots:
    """The cluster's per-host slots, as one worker process takes them (see the module's docstring)."""

    def __init__(self, database_url: str, per_host: int, connections: int = CONNECTIONS) -> None:
        conninfo = libpq_url(database_url)
        self.per_host = per_host
        self._connections = [_LockConnection(conninfo) for _ in range(connections)]
        self._releases: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots for the block (waiting while all are taken)."""
        key = host_key(host)
        lock_conn = self._connections[key % len(self._connections)]
        number = await self._acquire(lock_conn, host, key)
        try:
            yield
        finally:
            # Released in the background: the request is done, and its caller need not wait in the
            # connection's queue (the statements of one connection still run in order).
            task = asyncio.get_running_loop().create_task(self._release(lock_conn, host, key, number))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def aclose(self) -> None:
        if self._releases:
            await asyncio.wait(self._releases)
        for lock_conn in self._connections:
            if lock_conn.conn is not None:
                await lock_conn.conn.close()
                lock_conn.conn = None

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
