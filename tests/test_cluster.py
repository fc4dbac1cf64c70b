"""Past one machine, end to end: ``aggregator worker`` and ``aggregator clusterer`` as real processes on a
throwaway PostgreSQL server, against the demo's outlets served on 127.0.0.1. The stories must be the
ones a single SQLite process makes of the same feeds; a killed clusterer's standby takes over; a killed
worker's feeds are polled by another; nothing is stored or placed twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.tools.demo import DemoSite, article_path, load_corpus, render_feed
from aggregator.tools.feedserver import LoopbackServer, Request, Response
from aggregator.tools.scoring import score
from helpers import cli, count, demo_site, rows, wait_for, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # real processes, tens of seconds each: the slow set (and `pytest -m postgres`)

OUTLETS = ["globalwire", "meridian", "dailyherald", "northstar", "citizen"]
FAST = {"heartbeat": "1s", "stalled_after": "6s"}  # a dead worker noticed within seconds (a busy one never taken for dead)


class Procs:
    """The test's aggregator processes, each logging to a file; all killed at the end."""

    def __init__(self, directory: Path, config: Path) -> None:
        self.directory, self.config = directory, config
        self.running: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, *command: str) -> subprocess.Popen[str]:
        log = (self.directory / f"{name}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "aggregator", "-v", *command, "--config", str(self.config)],
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text()

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        proc = self.running.pop(name)
        proc.send_signal(sig)
        return proc.wait(timeout=30)

    def close(self) -> None:
        for name in list(self.running):
            self.stop(name, signal.SIGKILL)


@pytest.fixture
def site() -> Iterator[tuple[LoopbackServer, DemoSite, dict[str, str]]]:
    with demo_site() as (server, demo):
        yield server, demo, {server.url(article_path(a)): a.event for a in demo.corpus.articles if a.outlet in OUTLETS}


def feeds(server: LoopbackServer) -> list[dict[str, object]]:
    corpus = load_corpus()
    return [{"url": server.url(f"/feeds/{slug}.xml"), "name": corpus.outlet(slug).name, "interval": "30m"} for slug in OUTLETS]


def stories_by_url(config: Path) -> dict[str, int]:
    listed = cli("clusters", "--config", str(config), "--since", "4d", "--json")
    assert listed.returncode == 0, listed.stderr
    return {v["url"]: s["id"] for s in json.loads(listed.stdout) for v in s["variants"]}


def stored_all(db: Path, offered: set[str]) -> bool:
    """Every offered article stored and nothing left in the inbox (answers that only repeat stored articles included)."""
    return count(db, "articles") >= len(offered) and rows(db, "select count(*) from inbox") == [(0,)]


def consistent(db: Path, offered: set[str]) -> None:
    """Every article stored once, in exactly one story, with its signature; every story one canonical."""
    urls = [r[0] for r in rows(db, "select url from articles")]
    assert len(urls) == len(set(urls)) and set(urls) == offered, "an article was stored twice, or not at all"
    assert rows(db, "select count(*) from articles a left join story_members m on m.article_id = a.id where m.article_id is null") == [(0,)]
    assert rows(db, "select count(*) from articles a left join signatures g on g.article_id = a.id where g.article_id is null") == [(0,)]
    assert rows(db, "select count(*) from (select story_id from story_members where kind = 'canonical' group by story_id having count(*) <> 1) x") == [(0,)]
    assert rows(db, "select count(*) from inbox") == [(0,)]


def test_two_workers_and_a_clusterer_make_the_stories_one_process_makes(site, tmp_path: Path, postgres_server) -> None:
    server, _, expected = site
    one = tmp_path / "one"
    one.mkdir()
    single = write_config(one, feeds(server))
    assert cli("poll", "--all", "--config", str(single)).returncode == 0
    alone = stories_by_url(single)
    requests_alone = len(server.requests)

    many = tmp_path / "many"
    many.mkdir()
    config = write_config(many, feeds(server), database_url=postgres_server.create_database(), cluster=FAST)
    procs = Procs(many, config)
    try:
        procs.start("clusterer", "clusterer")
        for i in range(2):
            procs.start(f"worker{i}", "worker")
        wait_for(lambda: stored_all(many / "aggregator.db", set(expected)), "the cluster to store every offered article", 90)
        time.sleep(3)  # (anything more would be a duplicate)
        shown = cli("cluster-status", "--json", "--config", str(config))
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert status["clusterer"].startswith("aggregator clusterer ") and status["workers"] == {"alive": 2, "silent": 0}
        assert status["inbox"]["answers"] == 0 and status["feeds_due"] == 0 and status["poll_jobs"].get("todo", 0) == 0
        for name in ("worker0", "worker1", "clusterer"):
            assert procs.stop(name) == 0, procs.log(name)
    finally:
        procs.close()
    assert "Traceback" not in procs.log("clusterer") + procs.log("worker0") + procs.log("worker1")
    consistent(many / "aggregator.db", set(expected))
    feed_paths = [r.path for r in server.requests[requests_alone:] if r.path.startswith("/feeds/")]
    assert Counter(feed_paths) == {f"/feeds/{slug}.xml": 1 for slug in OUTLETS}, "each feed polled once in its interval"
    together = stories_by_url(config)
    assert set(together) == set(alone) == set(expected)
    agreement = score(together, alone)
    assert agreement.bcubed_f1 >= 0.99, agreement
    gold = score(together, expected)
    assert gold.bcubed_f1 >= score(alone, expected).bcubed_f1 - 0.01, gold


def test_a_standby_clusterer_takes_over_from_a_killed_one_and_nothing_is_placed_twice(site, tmp_path: Path, postgres_server) -> None:
    server, _, expected = site
    config = write_config(tmp_path, feeds(server), database_url=postgres_server.create_database(), cluster=FAST)
    db = tmp_path / "aggregator.db"
    procs = Procs(tmp_path, config)
    try:
        procs.start("first", "clusterer")
        wait_for(lambda: "clusterer started" in procs.log("first"), "the first clusterer", 60)
        procs.start("standby", "clusterer")
        wait_for(lambda: "standing by" in procs.log("standby"), "the second clusterer to stand by", 60)
        procs.start("worker", "worker")
        # The answers wait in the inbox a few seconds (a round is stored together): kill the clusterer then.
        wait_for(lambda: count(db, "inbox") >= len(OUTLETS), "the worker's answers", 60)
        killed_at = time.monotonic()
        procs.stop("first", signal.SIGKILL)
        wait_for(lambda: "clusterer started" in procs.log("standby"), "the standby to take over", 30)
        took_over_s = time.monotonic() - killed_at
        wait_for(lambda: stored_all(db, set(expected)), "the standby to store every article", 60)
        time.sleep(1)
        assert procs.stop("worker") == 0 and procs.stop("standby") == 0
    finally:
        procs.close()
    assert took_over_s < 10, took_over_s
    assert "took over" in procs.log("standby") and "Traceback" not in procs.log("standby")
    consistent(db, set(expected))


def test_a_killed_workers_feed_is_polled_by_another(site, tmp_path: Path, postgres_server) -> None:
    server, demo, expected = site
    held = {"first": True}

    def slow_meridian(request: Request) -> Response:
        if request.path == "/feeds/meridian.xml" and held["first"]:
            held["first"] = False
            time.sleep(8)  # the worker polling it is killed meanwhile
        return demo(request)

    server.handler = slow_meridian
    config = write_config(tmp_path, feeds(server), database_url=postgres_server.create_database(), cluster=FAST)
    db = tmp_path / "aggregator.db"
    procs = Procs(tmp_path, config)
    try:
        procs.start("clusterer", "clusterer")
        procs.start("doomed", "worker")
        wait_for(lambda: not held["first"], "the first worker to ask for the slow feed", 60)
        procs.stop("doomed", signal.SIGKILL)
        procs.start("survivor", "worker")
        wait_for(lambda: stored_all(db, set(expected)), "the other worker to poll every feed", 90)
        time.sleep(1)
        assert procs.stop("survivor") == 0 and procs.stop("clusterer") == 0
    finally:
        procs.close()
    assert "of a worker that stopped: ended, its feed polled again" in procs.log("survivor")
    consistent(db, set(expected))


class Sections:
    """300 section feeds over the demo's outlets on one loopback host (each article listed by several
    of its outlet's sections, as real sites do), the article pages behind them, every answer a little
    late; the server's own count of requests in flight at once."""

    FEEDS = 300

    def __init__(self, demo: DemoSite) -> None:
        self.demo = demo
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.most_in_flight = 0

    def feed_paths(self) -> list[str]:
        return [f"/sections/{k}.xml" for k in range(self.FEEDS)]

    def __call__(self, request: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.02)
            path = request.path.split("?", 1)[0]
            if not path.startswith("/sections/"):
                return self.demo(request)
            k = int(path.removeprefix("/sections/").removesuffix(".xml"))
            outlets = self.demo.corpus.outlets
            outlet = outlets[k % len(outlets)]
            own = [a for a in self.demo.corpus.articles if a.outlet == outlet.slug]
            items = sorted(((a, self.demo.published(a)) for j, a in enumerate(own) if (j + k // len(outlets)) % 5 < 2),
                           key=lambda it: (it[1], it[0].key), reverse=True)
            body, ctype = render_feed(outlet, items, self.demo.base_url)
            return Response(200, body, {"Content-Type": ctype})
        finally:
            with self._lock:
                self.in_flight -= 1


def test_three_workers_on_300_feeds_hold_the_host_limit_and_agree_with_one_process(site, tmp_path: Path, postgres_server) -> None:
    server, demo, _ = site
    sections = Sections(demo)
    server.handler = sections
    listed = {(server.url(article_path(a)), a.event) for a in demo.corpus.articles}
    offered = {u for u, _ in listed}
    gold = dict(listed)
    feeds300 = [{"url": server.url(p), "name": demo.corpus.outlets[k % len(demo.corpus.outlets)].name, "interval": "30m"}
                for k, p in enumerate(sections.feed_paths())]

    one = tmp_path / "one"
    one.mkdir()
    single = write_config(one, feeds300)
    assert cli("poll", "--all", "--config", str(single)).returncode == 0
    alone = stories_by_url(single)
    pages_alone = Counter(r.path for r in server.requests if r.path.endswith(".html"))

    sections.reset()
    start = len(server.requests)
    many = tmp_path / "many"
    many.mkdir()
    config = write_config(many, feeds300, database_url=postgres_server.create_database(), cluster=FAST)
    procs = Procs(many, config)
    try:
        procs.start("clusterer", "clusterer")
        for i in range(3):
            procs.start(f"worker{i}", "worker")
        wait_for(lambda: stored_all(many / "aggregator.db", offered), "the cluster to store every article", 180)
        time.sleep(3)
        for name in ("worker0", "worker1", "worker2", "clusterer"):
            assert procs.stop(name) == 0, procs.log(name)
    finally:
        procs.close()
    consistent(many / "aggregator.db", offered)
    polled = Counter(r.path for r in server.requests[start:] if r.path.startswith("/sections/"))
    pages = Counter(r.path for r in server.requests[start:] if r.path.endswith(".html"))
    assert pages == pages_alone == Counter(set(pages_alone)), "each page fetched once, however many feeds and workers"
    assert polled == Counter(sections.feed_paths()), "each feed polled once in its interval"
    assert sections.most_in_flight <= 2, f"{sections.most_in_flight} requests at once on one host (per_host_concurrency: 2)"
    together = stories_by_url(config)
    assert set(together) == set(alone) == offered
    agreement = score(together, alone)
    assert agreement.bcubed_f1 >= 0.99, agreement
    assert score(together, gold).bcubed_f1 >= score(alone, gold).bcubed_f1 - 0.01


def test_a_feed_added_to_the_config_is_polled_by_the_running_cluster(site, tmp_path: Path, postgres_server) -> None:
    server, _, expected = site
    url = postgres_server.create_database()
    first, added = feeds(server)[:4], feeds(server)[4:]
    config = write_config(tmp_path, first, database_url=url, cluster=FAST)
    db = tmp_path / "aggregator.db"
    procs = Procs(tmp_path, config)
    try:
        procs.start("clusterer", "clusterer")
        procs.start("worker", "worker")
        wait_for(lambda: stored_all(db, {u for u in expected if f"/{OUTLETS[4]}/" not in u}), "the first four outlets", 60)
        write_config(tmp_path, first + added, database_url=url, cluster=FAST)
        wait_for(lambda: stored_all(db, set(expected)), "the added outlet's articles, polled without a restart", 60)
        assert procs.stop("worker") == 0 and procs.stop("clusterer") == 0
    finally:
        procs.close()
    assert "reloaded" in procs.log("worker")
    consistent(db, set(expected))


def test_clusterers_killed_again_and_again_mid_stream_lose_and_repeat_nothing(site, tmp_path: Path, postgres_server) -> None:
    """The demo's 72 hours replayed in about 30 s to two workers polling every 2 s, while the active
    clusterer is SIGKILLed every few seconds (a new one started each time, the other standing by):
    at the end every article is stored once, in one story, and nothing is left in the inbox."""
    import random

    server, demo, expected = site
    start = demo.now - timedelta(hours=72)
    demo.now = start
    every = [dict(f, interval="2s") for f in feeds(server)]
    config = write_config(tmp_path, every, database_url=postgres_server.create_database(), cluster=FAST,
                          schedule={"min_interval": "1s", "jitter": 0}, extract={"workers": 1})
    db = tmp_path / "aggregator.db"
    procs = Procs(tmp_path, config)
    rng = random.Random(7)
    kills = 0
    try:
        procs.start("c0", "clusterer")
        procs.start("c1", "clusterer")
        for i in range(2):
            procs.start(f"worker{i}", "worker")
        replay_end = time.monotonic() + 30
        while time.monotonic() < replay_end:
            left = max(replay_end - time.monotonic(), 0.0)
            demo.now = start + timedelta(hours=72 * (1 - left / 30))
            time.sleep(rng.uniform(2, 4))
            active = [n for n in procs.running if n.startswith("c") and "clusterer started" in procs.log(n)]
            if active:
                procs.stop(active[0], signal.SIGKILL)
                kills += 1
                procs.start(f"c{kills + 1}", "clusterer")
        demo.now = start + timedelta(hours=72)
        wait_for(lambda: stored_all(db, set(expected)), "every article after the kills", 120)
        time.sleep(2)
    finally:
        procs.close()
    assert kills >= 5
    consistent(db, set(expected))
