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

FIRST_WAIT_S, LONGEST_WAIT_S = 0.02, 0.5  # between tries while every slot of a host is taken (doubling, jittered)


def host_key(host: str) -> int:
    """A host's 32-bit lock key (the first of the two keys; the slot's number is the second)."""
    return int.from_bytes(hashlib.sha256(f"aggregator:host:{host}".encode()).digest()[:4], "big", signed=True)


class ClusterHostSlots:
    """The cluster's per-host slots, as one worker process takes them (see the module's docstring)."""

    def __init__(self, database_url: str, per_host: int) -> None:
        self._conninfo = libpq_url(database_url)
        self.per_host = per_host
        self._conn: psycopg.AsyncConnection | None = None
        self._io = asyncio.Lock()  # one statement at a time on the lock connection
        self._held: dict[str, set[int]] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots for the block (waiting while all are taken)."""
        number = await self._acquire(host)
        try:
            yield
        finally:
            await self._release(host, number)

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _acquire(self, host: str) -> int:
        key, wait = host_key(host), FIRST_WAIT_S
        while True:
            async with self._io:
                for number in range(self.per_host):
                    if number not in self._held.get(host, ()) and await self._ask("SELECT pg_try_advisory_lock(%s, %s)", key, number):
                        self._held.setdefault(host, set()).add(number)  # (after the ask: a reconnection forgets what was held)
                        return number
            await asyncio.sleep(wait * (0.5 + random.random()))
            wait = min(wait * 2, LONGEST_WAIT_S)

    async def _release(self, host: str, number: int) -> None:
        async with self._io:
            self._held.get(host, set()).discard(number)
            if self._conn is not None:
                try:
                    await self._ask("SELECT pg_advisory_unlock(%s, %s)", host_key(host), number)
                except NetworkError:
                    pass  # the connection is gone, and the slot with it

    async def _ask(self, sql: str, key: int, number: int) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn, self._held = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True), {}
            cursor = await self._conn.execute(sql, (key, number))
            row = await cursor.fetchone()
            return bool(row and row[0])
        except psycopg.OperationalError as exc:  # the database went away: every slot held went with it
            self._conn, self._held = None, {}
            raise NetworkError("(per-host slots)", f"the cluster's database cannot be reached: {exc}") from None
