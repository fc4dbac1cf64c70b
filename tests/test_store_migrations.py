"""An old database file is brought up to the current schema on open, keeping what it held."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aggregator.errors import StorageError
from aggregator.store import SCHEMA_VERSION, Store
from aggregator.store.interface import CorrectionRequest


def make_v1_database(path: Path) -> None:
    """A database as the first release left it: created now, then every later step undone by hand."""
    Store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.executescript(
        """
        DROP TRIGGER articles_fts_insert; DROP TRIGGER articles_fts_delete; DROP TRIGGER articles_fts_update;
        DROP INDEX ix_articles_first_seen;
        DROP INDEX ix_articles_reported;
        ALTER TABLE articles DROP COLUMN reported_at;
        DROP TABLE articles_fts;
        DROP TABLE correction_requests; DROP TABLE inbox; DROP TABLE page_claims;
        DROP TABLE story_reads; DROP TABLE article_revisions; DROP TABLE story_events; DROP TABLE corrections;
        ALTER TABLE feeds DROP COLUMN named;
        ALTER TABLE feeds DROP COLUMN interval_set;
        ALTER TABLE articles DROP COLUMN summary_html;
        DROP TABLE dedup_snapshots;
        ALTER TABLE feeds DROP COLUMN learned_interval_s;
        UPDATE meta SET value = '1' WHERE key = 'schema_version';
        INSERT INTO feeds (id, config_url, url, name, interval_s, error_count) VALUES (1, 'https://a.example/f', 'https://a.example/f', 'A', 900, 0);
        INSERT INTO articles (id, feed_id, guid, url, title, text, source, published_at, first_seen_at, content_hash, from_page)
            VALUES (1, 1, 'g1', 'https://a.example/1', 'Old title', 'Old text', 'A', '2026-01-01 10:00:00.000000', '2026-01-01 10:05:00.000000', 'h', 0);
        """
    )
    db.commit()
    db.close()


def test_v1_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    make_v1_database(path)
    store = Store(f"sqlite:///{path}")
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert {r[1] for r in db.execute("PRAGMA table_info(articles)")} >= {"summary_html", "title", "text", "reported_at"}
    assert {r[1] for r in db.execute("PRAGMA table_info(feeds)")} >= {"learned_interval_s"}
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'dedup_snapshots'").fetchone() is not None
    assert db.execute("SELECT title, text, summary_html FROM articles").fetchall() == [("Old title", "Old text", None)]
    assert db.execute("SELECT name, named, interval_set FROM feeds").fetchall() == [("A", 1, 0)]
    assert db.execute("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'old'").fetchall() == [(1,)]  # indexed by the migration
    assert db.execute("SELECT count(*) FROM story_reads").fetchone() == (0,)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_v7_database_gains_the_correction_requests_and_keeps_its_corrections(tmp_path: Path) -> None:
    path = tmp_path / "v7.sqlite"
    Store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.executescript(
        """
        DROP TABLE correction_requests; DROP TABLE inbox; DROP TABLE page_claims;
        UPDATE meta SET value = '7' WHERE key = 'schema_version';
        INSERT INTO feeds (id, config_url, url, name, interval_s, error_count) VALUES (1, 'https://a.example/f', 'https://a.example/f', 'A', 900, 0);
        INSERT INTO articles (id, feed_id, guid, url, title, text, source, published_at, first_seen_at, content_hash, from_page)
            VALUES (1, 1, 'g1', 'https://a.example/1', 'T', 'Text', 'A', '2026-01-01 10:00:00.000000', '2026-01-01 10:05:00.000000', 'h', 0);
        INSERT INTO stories (id, canonical_article_id, title, first_seen_at, first_reported_at, updated_at)
            VALUES (1, 1, 'T', '2026-01-01 10:05:00.000000', '2026-01-01 10:00:00.000000', '2026-01-01 10:05:00.000000'),
                   (2, 1, 'T', '2026-01-01 10:05:00.000000', '2026-01-01 10:00:00.000000', '2026-01-01 10:05:00.000000');
        INSERT INTO corrections (id, kind, story_id, other_story_id, article_ids, created_at) VALUES (1, 'split', 1, 2, '[1]', '2026-01-02 09:00:00.000000');
        """
    )
    db.commit()
    db.close()
    store = Store(f"sqlite:///{path}")
    try:
        assert [c.id for c in store.corrections()] == [1]
        queue = store.correction_queue()
        asked = queue.add(CorrectionRequest("undo", correction_id=1), datetime(2026, 1, 3, tzinfo=timezone.utc))
        assert (asked.id, asked.status, queue.pending()) == (1, "pending", [asked])
    finally:
        store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),) == ("10",)
    assert {r[1] for r in db.execute("PRAGMA table_info(correction_requests)")} >= {"kind", "status", "reason", "correction_id"}
    assert {r[1] for r in db.execute("PRAGMA table_info(inbox)")} == {"id", "feed_id", "created_at", "articles", "data"}  # v9
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_newer_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    Store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StorageError, match=f"newer than this program \\(v{SCHEMA_VERSION}\\)"):
        Store(f"sqlite:///{path}")


def test_changed_dedup_settings_are_refused_not_mixed(tmp_path: Path, server, routes) -> None:
    """Signatures made under other dedup settings are never mixed with new ones: a clear error instead."""
    import asyncio
    from datetime import datetime, timezone

    from aggregator.config import load_config
    from aggregator.errors import SchemaMismatch
    from aggregator.factory import make_aggregator
    from aggregator.tools.feedserver import Response
    from helpers import write_config

    routes["/feed.xml"] = Response(200, (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
        b"<item><title>Ferry terminal opens</title><guid>g1</guid><description>The harbour authority opened the terminal.</description></item>"
        b"<item><title>Council passes budget</title><guid>g2</guid><description>The council passed the budget.</description></item>"
        b"</channel></rss>"
    ), {"Content-Type": "application/rss+xml"})
    feeds = [{"url": server.url("/feed.xml"), "name": "F"}]
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    agg = make_aggregator(load_config(write_config(tmp_path, feeds, extract={"fetch_pages": False})), clock=lambda: now)
    asyncio.run(agg.poll_round(now))
    assert agg.store.counts()["articles"] == 2
    agg.close()
    other = make_aggregator(load_config(write_config(tmp_path, feeds, dedup={"num_perm": 32})), clock=lambda: now)
    try:
        with pytest.raises(SchemaMismatch, match="stored signatures use .*p64.* but this configuration makes .*p32"):
            other.ensure_index()
    finally:
        other.close()


def test_processes_opening_one_new_database_at_once_all_succeed(tmp_path) -> None:
    """A daemon and a CLI command started together on a new storage both create the schema."""
    db = tmp_path / "race" / "aggregator.db"
    code = f"from aggregator.store import Store; Store({f'sqlite:///{db}'!r}).close()"
    for _ in range(3):  # the race is narrow: a few rounds of eight
        if db.exists():
            for path in db.parent.iterdir():
                path.unlink()
        procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(8)]
        failures = [err for p in procs if (err := p.communicate(timeout=60)[1]) and p.returncode != 0]
        assert not failures, failures[0]
