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
from aggregator.store.locks import WRITER, DatabaseLock
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


def test_an_answer_that_cannot_be_stored_is_dropped_alone_and_the_rest_stored(postgres_url, tmp_path: Path, caplog) -> None:
    """One bad answer in the inbox (unreadable bytes; a feed the database does not know) must not stop the clusterer."""
    import logging
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone

    from aggregator.cluster.clusterer import drain_inbox
    from aggregator.cluster.codec import encode_batch
    from aggregator.factory import make_aggregator
    from aggregator.ingest import Candidate, FeedBatch
    from aggregator.models import Entry, FeedUpdate, ParsedFeed

    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    config = load_config(write_config(tmp_path, [{"url": "http://127.0.0.1:9/a.xml", "name": "Gazette"}], database_url=postgres_url))
    agg = make_aggregator(config, clock=lambda: now)
    try:
        feed = agg.feeds()[0]
        text = "A government missile strike killed at least 12 people in a village in Idlib province early on Tuesday."
        entry = Entry("g1", "http://127.0.0.1:9/1", "Strike kills 12", text, now - timedelta(hours=1))
        good = FeedBatch(feed, ParsedFeed("Gazette", None, "en", (), None), [Candidate(entry, text, entry.title, entry.published or now, "en", False)],
                         FeedUpdate(now + timedelta(minutes=15), 0, None, None, None, True), now)
        stray = replace(good, feed=replace(feed, id=9999))
        agg.store.put_inbox(feed.id, 1, b"not an answer", now)
        agg.store.put_inbox(feed.id, 1, encode_batch(stray), now)
        agg.store.put_inbox(feed.id, 1, encode_batch(good), now)
        with caplog.at_level(logging.ERROR, logger="aggregator.cluster.clusterer"):
            assert drain_inbox(agg, now + timedelta(minutes=1)) == (2, 1)
        assert agg.store.inbox_backlog()[0] == 0 and agg.store.counts()["articles"] == 1
        assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 2
        assert agg.store.feed(feed.id).next_poll_at == now + timedelta(minutes=15)  # the good answer's feed state moved
    finally:
        agg.close()
