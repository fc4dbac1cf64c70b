"""One place builds the parts from a config: the store, the fetcher, the dedup index, the process
pool, and the facades made of them. Every command, the daemon, the demo and the benchmarks build
through here; the constructors themselves do no I/O (opening the store does: it creates or
migrates the database). The one-writer rule is enforced here too (``writer``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config
from .errors import DaemonLocked, StorageError
from .library import Clock, Library, utcnow
from .store import Store, shown, sqlite_file

if TYPE_CHECKING:
    import httpx

    from .core import Aggregator
    from .fetch import Fetcher

WRITER_REFUSAL = "another aggregator process (a daemon, a poll or the demo) is writing to this storage; stop it or wait"


def open_store(config: Config) -> Store:
    """The config's database, created or migrated as needed."""
    return Store(config.database_url)


def open_library(config: Config, clock: Clock = utcnow) -> Library:
    """For the commands that only read (listing, a story, the digest, feed health): the store and
    the config. Feeds new to the config are added; the stored names and intervals of known ones
    are left to the commands that poll. A SQLite database that is not there yet is an error naming
    where it was looked for, not an empty database made on the way."""
    found = sqlite_file(config.database_url)
    if found is not None and not found.exists():
        raise StorageError(f"{found}: no database here yet (settings.storage of {config.path or 'the config'}); "
                           "`aggregator poll` or `aggregator run` with this config makes it")
    library = Library(config, open_store(config), clock)
    library.sync_feeds(refresh=False)
    return library


def make_fetcher(config: Config, transport: httpx.AsyncBaseTransport | None = None,
                 current: Callable[[], Config] | None = None, cluster: bool = False) -> Fetcher:
    """An HTTP client under the config's limits and address guard (``transport``: tests' own). The
    guard lets the hosts of the config's feeds reach the addresses ``allow_hosts`` opens; with
    ``current``, the feeds of the config in force at each connection (a hot reload changes them).
    A cluster's worker (``cluster``) shares the per-host limit with the other workers."""
    from .fetch import Fetcher

    slots = None
    if cluster:
        from .cluster.hostslots import ClusterHostSlots

        slots = ClusterHostSlots(config.database_url, config.settings.fetch.per_host_concurrency)
    return Fetcher(config.settings.fetch, config.settings.allow_hosts, transport=transport,
                   named_hosts=_FeedHosts(current or (lambda: config)), host_slots=slots)


class _FeedHosts:
    """The hosts of the feeds of the config in force, worked out once per feed list."""

    def __init__(self, current: Callable[[], Config]) -> None:
        self._current = current
        self._feeds: object = None
        self._hosts: frozenset[str] = frozenset()

    def __call__(self) -> frozenset[str]:
        feeds = self._current().feeds
        if feeds is not self._feeds:
            from .netguard import feed_hosts

            self._feeds, self._hosts = feeds, feed_hosts(f.url for f in feeds)
        return self._hosts


def make_aggregator(config: Config, clock: Clock = utcnow, transport: httpx.AsyncBaseTransport | None = None,
                    sync: bool = True) -> Aggregator:
    """Everything polling needs. It does not take the storage's writer lock: commands, the daemon
    and the demo use ``writer``; tests and benchmarks that own their storage may call this. A
    cluster's worker (``sync`` False) leaves the stored feed list to the clusterer, which writes it."""
    from .core import Aggregator
    from .dedup import Deduplicator
    from .ingest import Ingest
    from .pool import Pool

    store = open_store(config)
    ingest = Ingest(Deduplicator(config.settings.dedup), store, clock)
    agg = Aggregator(config, store, ingest, Pool(config.settings.extract.workers),
                     lambda: make_fetcher(config, transport, current=lambda: agg.config), clock)
    if sync:
        agg.sync_feeds(refresh=True)
    return agg


@contextmanager
def writer_lock(storage_dir: Path, refusal: str = WRITER_REFUSAL) -> Iterator[None]:
    """The storage's one-writer lock alone, for a writer that prepares its directory before it
    builds its parts (the demo): then ``make_aggregator`` inside."""
    from .lock import storage_owned

    with storage_owned(storage_dir, refusal):
        yield


def process_name(role: str) -> str:
    """How a process names itself to others (a database's lock holder, a worker in the job queue): role host:pid."""
    import os
    import socket

    return f"{role} {socket.gethostname()}:{os.getpid()}"


@contextmanager
def storage_lock(config: Config, refusal: str = WRITER_REFUSAL) -> Iterator[None]:
    """The one-writer lock of the config's database: a file beside a SQLite database (processes of
    one machine); PostgreSQL's advisory lock on any other (processes of every machine sharing it,
    released by the server when its holder dies). ``DaemonLocked`` with ``refusal`` when taken."""
    from .store.locks import WRITER, DatabaseLock, is_postgresql

    if not is_postgresql(config.database_url):
        with writer_lock(config.lock_dir, refusal):
            yield
        return
    with DatabaseLock(config.database_url, WRITER, holder=process_name("aggregator")) as lock:
        if not lock.try_acquire():
            raise DaemonLocked(f"{shown(config.database_url)}: {refusal}")
        yield


@contextmanager
def writer(config: Config, refusal: str = WRITER_REFUSAL, clock: Clock = utcnow,
           transport: httpx.AsyncBaseTransport | None = None) -> Iterator[Aggregator]:
    """``make_aggregator`` under the storage's one-writer lock (``storage_lock``: taken before
    anything is opened or written), closed at the end."""
    with storage_lock(config, refusal):
        agg = make_aggregator(config, clock, transport)
        try:
            yield agg
        finally:
            agg.close()
