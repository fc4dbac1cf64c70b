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
