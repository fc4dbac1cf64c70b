"""Locks a PostgreSQL database holds for the processes sharing it, on any machine: PostgreSQL's
advisory locks, held by a connection of their own and released by the server when that connection
ends (a process killed with SIGKILL frees its locks with its connection).

``DatabaseLock(url, name)``: ``try_acquire()`` once, or ``wait()`` as a standby does; ``held()``
asks the server whether this connection still holds it (a restarted server forgets).
"""

from __future__ import annotations

import hashlib
import time
from types import TracebackType

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ..errors import StorageError
from .database import reason, shown

WRITER = "aggregator:writer"  # the one process that places articles into stories (daemon, clusterer, poll)
# This lock in pg_locks, as ``l``: a bigint key shows as classid (its high 32 bits) and objid (its low 32 bits), objsubid 1.
HELD = "l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
QUEUE_SCHEMA = "aggregator:queue-schema"  # the workers' job queue's tables, created by the first worker


def lock_key(name: str) -> int:
    """A lock's 64-bit key: the first 8 bytes of the name's SHA-256, signed (PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def is_postgresql(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq reads it (``postgresql://``, without the driver's name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class DatabaseLock:
    """One named advisory lock on one database, on a connection kept for it (autocommit: the
    connection holds no transaction open while it holds the lock)."""

    def __init__(self, url: str, name: str, holder: str | None = None) -> None:
        """``holder``: how the lock's connection names itself to the server (``application_name``:
        ``aggregator cluster-status`` shows who holds the lock)."""
        self.url, self.name, self.key = url, name, lock_key(name)
        self._engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": holder[:63]} if holder else {})
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other session holds it; False (at once) if one does."""
        conn = self._connection()
        got = bool(self._scalar(conn, "SELECT pg_try_advisory_lock(:k)"))
        if not got:
            self.release()
        return got

    def wait(self, poll_s: float = 0.5, stop: float | None = None) -> bool:
        """Try every ``poll_s`` seconds until the lock is taken (True) or ``stop`` (a
        ``time.monotonic()`` deadline) passes (False)."""
        while True:
            if self.try_acquire():
                return True
            if stop is not None and time.monotonic() >= stop:
                return False
            time.sleep(poll_s)

    def held(self) -> bool:
        """Whether this connection still holds the lock (the server is asked)."""
        if self._conn is None:
            return False
        try:
            return bool(self._scalar(self._conn, f"SELECT count(*) FROM pg_locks l WHERE {HELD} AND l.pid = pg_backend_pid()"))
        except StorageError:
            return False

    def holder(self) -> str | None:
        """Who holds the lock, as its connection names itself (else its process id and address); None: nobody."""
        conn = self._connection()
        try:
            row = conn.execute(text(f"SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                                    f" WHERE {HELD}"), self._params()).first()
        except SQLAlchemyError as exc:
            raise StorageError(f"{shown(self.url)}: the {self.name} lock: {reason(exc)}") from None
        finally:
            self.release()
        if row is None:
            return None
        return str(row[0]) if row[0] else f"pid {row[2]}" + (f" at {row[1]}" if row[1] else "")

    def release(self) -> None:
        """Release the lock (by closing its connection); it may be taken again."""
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def close(self) -> None:
        """Release the lock and the engine."""
        self.release()
        self._engine.dispose()

    def __enter__(self) -> DatabaseLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _connection(self) -> Connection:
        if self._conn is None:
            try:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except SQLAlchemyError as exc:
                raise StorageError(f"{shown(self.url)}: cannot connect to take the {self.name} lock: {reason(exc)}") from None
        return self._conn

    def _params(self) -> dict[str, int]:
        return {"k": self.key, "hi": (self.key >> 32) & 0xFFFFFFFF, "lo": self.key & 0xFFFFFFFF}

    def _scalar(self, conn: Connection, sql: str) -> object:
        try:
            return conn.execute(text(sql), self._params()).scalar()
        except SQLAlchemyError as exc:
            raise StorageError(f"{shown(self.url)}: the {self.name} lock: {reason(exc)}") from None
