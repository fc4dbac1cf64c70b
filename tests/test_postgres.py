"""PostgreSQL itself (``pytest -m postgres``): the schema created by processes racing on a new
database, the one-writer lock shared by processes and freed by a killed holder. A throwaway server on
127.0.0.1 (``postgres_server``); skipped, saying why, without Debian's postgresql binaries. The rest
of the suite runs on PostgreSQL too with ``pytest --database=postgresql``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.errors import DaemonLocked
from aggregator.factory import storage_lock
from aggregator.store import SCHEMA_VERSION, Store
from aggregator.store.locks import WRITER, DatabaseLock, libpq_url
from helpers import write_config

pytestmark = pytest.mark.postgres


def test_processes_opening_one_new_database_at_once_all_succeed(postgres_server) -> None:
    for _ in range(2):
        url = postgres_server.create_database()
        code = f"from aggregator.store import Store; Store({url!r}).close()"
        procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(6)]
        failures = [err for p in procs if (err := p.communicate(timeout=60)[1]) and p.returncode != 0]
        assert not failures, failures[0]
        store = Store(url)
        try:
            assert store.counts() == {"feeds": 0, "articles": 0, "stories": 0, "story_members": 0}
            with store.engine.connect() as conn:
                from sqlalchemy import text

                assert conn.execute(text("select value from meta where key = 'schema_version'")).scalar() == str(SCHEMA_VERSION)
        finally:
            store.close()


def test_signatures_stay_in_their_rows_in_new_and_upgraded_databases(postgres_server) -> None:
    from sqlalchemy import text

    storage = text("SELECT attstorage FROM pg_attribute WHERE attrelid = 'signatures'::regclass AND attname = 'data'")
    url = postgres_server.create_database()
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            assert conn.execute(storage).scalar() == "m"  # MAIN: a 2.7 KB signature is not moved out to TOAST
            conn.execute(text("ALTER TABLE signatures ALTER COLUMN data SET STORAGE EXTENDED"))  # as v9 made it
            conn.execute(text("UPDATE meta SET value = '9' WHERE key = 'schema_version'"))
    finally:
        store.close()
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(storage).scalar() == "m"
            assert conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() == str(SCHEMA_VERSION) == "10"
    finally:
        store.close()


def test_the_job_queue_replaces_a_connection_the_server_ended_without_failing_a_query(postgres_url) -> None:
    import asyncio

    import psycopg

    from aggregator.cluster.jobs import queue_connector

    async def run() -> tuple[int, int, bool]:
        connector = queue_connector(postgres_url, 1)
        await connector.open_async()
        try:
            first = (await connector.execute_query_one_async("SELECT pg_backend_pid() AS pid"))["pid"]
            with psycopg.connect(libpq_url(postgres_url), autocommit=True) as admin:  # as a server restart would
                assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone() == (True,)
            await asyncio.sleep(0.2)
            second = (await connector.execute_query_one_async("SELECT pg_backend_pid() AS pid"))["pid"]
            # autocommit: a statement leaves no transaction open behind it
            idle = (await connector.execute_query_one_async("SELECT now() = statement_timestamp() AS own"))["own"]
            return first, second, idle
        finally:
            await connector.close_async()

    first, second, own = asyncio.run(run())
    assert first != second and own


def test_the_writer_lock_is_one_per_database_and_a_killed_holder_frees_it(postgres_url, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, [], database_url=postgres_url))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom aggregator.config import load_config\nfrom aggregator.factory import storage_lock\n"
         f"with storage_lock(load_config({str(tmp_path / 'feeds.yaml')!r})):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DaemonLocked) as refused, storage_lock(config, "a daemon owns it"):
            pass
        assert "a daemon owns it" in str(refused.value) and postgres_url.rsplit("/", 1)[1] in str(refused.value)
        (tmp_path / "other").mkdir()
        other = load_config(write_config(tmp_path / "other", [], database_url=postgres_url.rsplit("/", 1)[0] + "/postgres"))
        with storage_lock(other):  # another database on the same server: another lock
            pass
        standby = DatabaseLock(postgres_url, WRITER)
        assert not standby.try_acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        assert standby.wait(poll_s=0.1, stop=deadline), "the killed holder's lock was not freed"
        assert standby.held()
        standby.close()
        assert not standby.held()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_search_reads_postgresqls_full_text_index(postgres_url) -> None:
    """The query's document is the index's expression, so a search is an index lookup, not a scan of every article."""
    from sqlalchemy import text

    from aggregator.store.schema import POSTGRES_DOCUMENT

    store = Store(postgres_url)
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(r[0] for r in conn.execute(text(
                f"EXPLAIN SELECT a.id FROM articles a WHERE to_tsvector('simple', {POSTGRES_DOCUMENT}) @@ phraseto_tsquery('simple', 'idlib')")))
    finally:
        store.close()
    assert "ix_articles_search" in plan, plan


def _answer(feed, now):
    """A worker's answer for ``feed``: one new article, the feed due again in 15 minutes."""
    from datetime import timedelta

    from aggregator.ingest import Candidate, FeedBatch
    from aggregator.models import Entry, FeedUpdate, ParsedFeed

    text = "A government missile strike killed at least 12 people in a village in Idlib province early on Tuesday."
    entry = Entry("g1", "http://127.0.0.1:9/1", "Strike kills 12", text, now - timedelta(hours=1))
    return FeedBatch(feed, ParsedFeed("Gazette", None, "en", (), None), [Candidate(entry, text, entry.title, entry.published or now, "en", False)],
                     FeedUpdate(now + timedelta(minutes=15), 0, None, None, None, True), now)


def test_an_answer_that_cannot_be_stored_is_dropped_alone_and_the_rest_stored(postgres_url, tmp_path: Path, caplog) -> None:
    """One bad answer in the inbox (unreadable bytes; a feed the database does not know) must not stop the clusterer."""
    import logging
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone

    from aggregator.cluster.clusterer import drain_inbox
    from aggregator.cluster.codec import encode_batch
    from aggregator.factory import make_aggregator

    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    config = load_config(write_config(tmp_path, [{"url": "http://127.0.0.1:9/a.xml", "name": "Gazette"}], database_url=postgres_url))
    agg = make_aggregator(config, clock=lambda: now)
    try:
        feed = agg.feeds()[0]
        good = _answer(feed, now)
        stray = replace(good, feed=replace(feed, id=9999))
        agg.store.put_inbox([(feed.id, 1, b"not an answer")], now)
        agg.store.put_inbox([(feed.id, 1, encode_batch(stray))], now)
        agg.store.put_inbox([(feed.id, 1, encode_batch(good))], now)
        with caplog.at_level(logging.ERROR, logger="aggregator.cluster.clusterer"):
            assert drain_inbox(agg, now + timedelta(minutes=1)) == (2, 1)
        assert agg.store.inbox_backlog()[0] == 0 and agg.store.counts()["articles"] == 1
        assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 2
        assert agg.store.feed(feed.id).next_poll_at == now + timedelta(minutes=15)  # the good answer's feed state moved
    finally:
        agg.close()


def test_workers_share_article_pages_each_fetched_once_and_a_failed_fetch_is_taken_over_at_once(postgres_url) -> None:
    """Two workers' ``SharedPages`` on one database (each its own store, as two processes): the pages
    a feed lists are claimed together, each is loaded by one worker only and the other reads its text;
    a load that raises gives its claim up, so the other worker loads the page without waiting for
    the claim to go stale."""
    import asyncio
    from datetime import datetime, timezone

    from aggregator.cluster.pages import SharedPages
    from aggregator.models import Entry, PageText

    stores = [Store(postgres_url), Store(postgres_url)]
    loads: list[tuple[int, str]] = []
    clock = lambda: datetime.now(timezone.utc)  # noqa: E731

    def loader(worker: int, fail: set[str]):
        async def load(entry: Entry) -> PageText | None:
            assert entry.url
            loads.append((worker, entry.url))
            await asyncio.sleep(0.3)  # the other worker asks meanwhile
            if entry.url in fail:
                raise RuntimeError("the extraction pool broke")
            return PageText(f"text of {entry.url}", title=None)
        return load

    def entry(n: int) -> Entry:
        return Entry(guid=str(n), url=f"http://site.test/a/{n}", title=f"t{n}", text="", published=None)

    async def main() -> tuple[list[PageText | None], list[PageText | None | BaseException]]:
        fail = {"http://site.test/a/4"}
        one = SharedPages(stores[0], loader(0, fail), clock, deadline_s=60)
        two = SharedPages(stores[1], loader(1, set()), clock, deadline_s=60)
        first = asyncio.gather(*(one.get(entry(n)) for n in range(5)), return_exceptions=True)
        await asyncio.sleep(0.1)  # worker 0 holds the claims
        second = asyncio.gather(*(two.get(entry(n)) for n in range(5)), return_exceptions=True)
        return await second, await first

    try:
        started = time.monotonic()
        seconds, firsts = asyncio.run(main())
        took = time.monotonic() - started
    finally:
        for store in stores:
            store.close()
    assert [p.text if isinstance(p, PageText) else p for p in seconds] == [f"text of http://site.test/a/{n}" for n in range(5)]
    assert isinstance(firsts[4], RuntimeError) and all(isinstance(p, PageText) for p in firsts[:4])
    assert sorted(loads) == [(0, f"http://site.test/a/{n}") for n in range(5)] + [(1, "http://site.test/a/4")]
    assert took < 5, f"the failed page waited for its claim to go stale ({took:.1f} s)"


def test_host_slots_hold_the_limit_over_workers_and_a_kept_slot_is_given_up_for_the_others(postgres_url) -> None:
    """Two workers' per-host slots (``ClusterHostSlots``, one request at a time per host): requests of
    both never overlap; a worker's burst keeps its slot between requests, yet the other worker gets
    its turn (a slot kept is given up when idle for ``linger_s``, and after ``most_held_s`` in use)."""
    import asyncio

    from aggregator.cluster.hostslots import ClusterHostSlots

    async def main() -> tuple[int, list[tuple[int, float]], float]:
        one = ClusterHostSlots(postgres_url, per_host=1, linger_s=0.2, most_held_s=0.5)
        two = ClusterHostSlots(postgres_url, per_host=1, linger_s=0.2, most_held_s=0.5)
        loop = asyncio.get_running_loop()
        in_flight, most, done = 0, 0, []

        async def request(slots: ClusterHostSlots, worker: int) -> None:
            nonlocal in_flight, most
            async with slots.slot("news.test"):
                in_flight += 1
                most = max(most, in_flight)
                await asyncio.sleep(0.02)
                in_flight -= 1
            done.append((worker, loop.time()))

        async def burst(slots: ClusterHostSlots, worker: int, n: int) -> None:
            for _ in range(n):
                await request(slots, worker)

        try:
            started = loop.time()
            await asyncio.gather(burst(one, 1, 60), burst(two, 2, 3))  # worker 1's burst lasts over 1 s
            alone = loop.time()
            await request(one, 1)  # kept by worker 1 after its burst...
            await asyncio.sleep(0.3)
            await request(two, 2)  # ...and given up when idle: worker 2 takes it
            return most, [(w, t - started) for w, t in done], loop.time() - alone
        finally:
            await one.aclose()
            await two.aclose()

    most, done, last = asyncio.run(main())
    assert most == 1
    worker_1_end = max(t for w, t in done if w == 1 and t < done[-2][1])
    assert sum(1 for w, t in done[:-2] if w == 2 and t < worker_1_end) == 3, "worker 2 waited for the end of worker 1's burst"
    assert last < 1.0, f"a slot kept by an idle worker held the other back {last:.1f} s"


def test_the_clusterer_holds_answers_while_polls_are_queued_and_stores_a_rounds_last_ones_at_once(postgres_url, tmp_path: Path) -> None:
    """Answers wait (``ROUND_HOLD_S``) so a round's feeds are stored together, but only while a worker
    still has polls queued or running (procrastinate's own tables and job): once none is, nothing
    more is coming and the answers are stored at once."""
    import asyncio
    from datetime import datetime, timedelta, timezone

    from procrastinate import App

    from aggregator.cluster import POLL_TASK
    from aggregator.cluster.clusterer import drain_inbox
    from aggregator.cluster.codec import encode_batch
    from aggregator.cluster.jobs import queue_connector
    from aggregator.factory import make_aggregator

    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    config = load_config(write_config(tmp_path, [{"url": "http://127.0.0.1:9/a.xml", "name": "Gazette"}], database_url=postgres_url))
    agg = make_aggregator(config, clock=lambda: now)

    async def queue(job: bool) -> None:
        app = App(connector=queue_connector(postgres_url, 2))
        async with app.open_async():
            if job:
                await app.schema_manager.apply_schema_async()
                await app.configure_task(POLL_TASK, queue="feeds").defer_async(feed_id=1)
            else:
                await app.connector.execute_query_async("DELETE FROM procrastinate_jobs")

    try:
        feed = agg.feeds()[0]
        answer = _answer(feed, now)
        agg.store.put_inbox([(feed.id, 1, encode_batch(answer))], now)
        asyncio.run(queue(job=True))
        assert drain_inbox(agg, now + timedelta(seconds=1)) == (0, 0)  # a poll is queued: its answer may belong with this one
        asyncio.run(queue(job=False))
        assert drain_inbox(agg, now + timedelta(seconds=1)) == (1, 1)  # none is: stored without waiting out the hold
    finally:
        agg.close()
