"""Kill the daemon with SIGKILL at random points, restart it, and check nothing is lost, duplicated or torn."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.tools.demo import DemoSite, article_path, load_corpus
from aggregator.tools.feedserver import LoopbackServer, Request, Response
from helpers import write_config
from test_daemon import aggregator, count, wait_for

KILLS = 20
LAGGARD_S = 15.0  # one feed answers this late (the read timeout is 20 s)


def check_consistency(db: Path, offered: set[str]) -> int:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        urls = [r[0] for r in conn.execute("select url from articles")]
        assert len(urls) == len(set(urls)), "an article was stored twice"
        assert set(urls) <= offered
        orphans = conn.execute("select count(*) from articles a left join story_members m on m.article_id = a.id where m.article_id is null").fetchone()[0]
        assert orphans == 0, "an article belongs to no story"
        bad = conn.execute(
            """select count(*) from stories s where not exists
               (select 1 from story_members m where m.story_id = s.id and m.article_id = s.canonical_article_id and m.kind = 'canonical')"""
        ).fetchone()[0]
        assert bad == 0, "a story's canonical is not one of its members"
        multi = conn.execute("select count(*) from (select story_id from story_members where kind = 'canonical' group by story_id having count(*) > 1)").fetchone()[0]
        assert multi == 0, "a story has two canonicals"
        empty = conn.execute("select count(*) from stories s where not exists (select 1 from story_members m where m.story_id = s.id)").fetchone()[0]
        assert empty == 0
        sigs = conn.execute("select count(*) from articles a left join signatures g on g.article_id = a.id where g.article_id is null").fetchone()[0]
        assert sigs == 0, "an article has no stored signature"
        return len(urls)
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path):
    corpus = load_corpus()
    start = datetime.now(timezone.utc) - timedelta(hours=72)
    site = DemoSite(corpus, start, feed_items=100)
    site.now = start + timedelta(hours=72)

    laggard = f"/feeds/{corpus.outlets[-1].slug}.xml"

    def slow_site(request: Request) -> Response:
        time.sleep(0.04)  # widen the windows in which a kill lands mid-fetch / mid-extraction
        if request.path == laggard:  # the first round stores the others after ROUND_HOLD_S, this one much later
            time.sleep(LAGGARD_S)
        return site(request)

    rng = random.Random(20261126)
    with LoopbackServer(slow_site) as server:
        site.base_url = server.base_url
        feeds = [{"url": server.url(f"/feeds/{o.slug}.xml"), "name": o.name, "interval": "30m"} for o in corpus.outlets]
        config = write_config(tmp_path, feeds, extract={"min_feed_text_chars": 100000})  # always fetch + extract pages
        offered = {server.url(article_path(a)) for a in corpus.articles}
        db = tmp_path / "aggregator.db"
        digest = tmp_path / "digests" / f"{datetime.now(timezone.utc).date()}.md"
        stored_before = 0
        progress: set[int] = set()
        for kill in range(KILLS):
            proc = subprocess.Popen([sys.executable, "-m", "aggregator", "run", "--config", str(config)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(1.0, 14.0))  # imports take ~1 s; then fetch, extract, cluster, store
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if db.exists():
                stored = check_consistency(db, offered)
                assert stored >= stored_before, "articles disappeared after a crash"
                stored_before = stored
                progress.add(stored)
            # The digest, killed while writing, is either absent, the old one or a complete new one.
            old = digest.read_text(encoding="utf-8") if digest.exists() else None
            writer = subprocess.Popen([sys.executable, "-m", "aggregator", "digest", "--config", str(config)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, 2.0))
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
            if digest.exists():
                now_text = digest.read_text(encoding="utf-8")
                assert now_text == old or now_text.rstrip().endswith("by aggregator._"), f"torn digest after kill {kill}"
            leftovers = [p for p in (tmp_path / "digests").glob(".*.tmp")] if (tmp_path / "digests").exists() else []
            for p in leftovers:  # a killed writer may leave its temp file; it must never be the digest itself
                os.unlink(p)

        assert any(0 < n < len(offered) for n in progress), f"no kill landed mid-run: {sorted(progress)}"

        # Finally let it run to completion: everything offered is stored exactly once.
        proc = subprocess.Popen([sys.executable, "-m", "aggregator", "run", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: count(db, "articles") >= len(offered), "all articles after the crashes", timeout=120)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        assert check_consistency(db, offered) == len(offered)
        listed = aggregator("clusters", "--config", str(config), "--since", "4d", "--json")
        assert listed.returncode == 0


def _descendants(pid: int) -> set[int]:
    """Live processes below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _multiprocessing(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"multiprocessing" in fh.read()
    except OSError:
        return False


def test_sigkill_leaves_no_worker_processes_behind(tmp_path: Path):
    """The extraction pool's workers (and the forkserver and resource tracker) leave with a
    killed daemon instead of living on as orphans, ~130 MB each, one set per crash."""
    corpus = load_corpus()
    start = datetime.now(timezone.utc) - timedelta(hours=72)
    site = DemoSite(corpus, start, feed_items=100)
    site.now = start + timedelta(hours=72)
    with LoopbackServer(site) as server:
        site.base_url = server.base_url
        feeds = [{"url": server.url(f"/feeds/{o.slug}.xml"), "name": o.name} for o in corpus.outlets]
        config = write_config(tmp_path, feeds, extract={"min_feed_text_chars": 100000, "workers": 2})  # pages: the pool starts
        proc = subprocess.Popen([sys.executable, "-m", "aggregator", "run", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: len(_descendants(proc.pid)) >= 4, "the forkserver, the resource tracker and two workers", timeout=60)
            below = _descendants(proc.pid)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        try:
            wait_for(lambda: not any(map(_running, below)), "the workers to leave with their parent", timeout=15)
        finally:
            for pid in filter(_multiprocessing, below):  # never leave them to the next test, whatever happened
                os.kill(pid, signal.SIGKILL)
