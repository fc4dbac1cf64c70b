"""The cluster benchmark (``python -m benchmarks.run --only cluster``): ``aggregator worker`` processes and
one ``aggregator clusterer`` on a throwaway PostgreSQL, against reader and our single SQLite process, on
the same generated input in one run.

Input: ``feeds`` teaser feeds (one sentence per item, so every article's page is fetched and
extracted) of ``items`` articles each, spread over ``hosts`` loopback servers run by another process
(``RemoteSites``); the articles are ``inputs.plant_items`` texts (planted copies and reports across
feeds) on ``inputs.render_page`` pages (60-90 KB of boilerplate around the text).

1. First round, in this order, each on a fresh database: reader (feeds only: it fetches no page),
   our single process (``poll_round``, pages extracted in its process pool), the cluster with 1
   worker, then with 2 workers. A cluster's clusterer is started first and left to go idle, and the
   job queue's tables (procrastinate) are created before the clock starts (their creation time is
   reported, not counted). The clock runs from starting the workers until every article is stored
   and the inbox is empty (the database polled every ``POLL_S``); when the last answer reached the
   inbox (the workers' throughput) and how long the clusterer then held the answers
   (``backlog.ROUND_HOLD_S``) are reported beside it.
2. Steady round: ``changed`` of the feeds publish one new item (its page too), the others answer 304.
   The single process polls every feed again; in the 2-worker cluster (still running), every feed's
   ``next_poll_at`` is set to now in the database (``UPDATE feeds``) and the round runs until every
   feed was polled again, the new articles are stored and the inbox is empty. CPU seconds (user +
   system, from /proc, child processes included) per feed are compared.

CPU is counted per process group: a group is a process and its descendants (worker: its extraction
pool and the pool's forkserver), each member's own time plus the time of the children it reaped.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .run import ROOT, RemoteSites, _version, make_config, new_of, process_cpu_s

POLL_S = 0.2  # how often the cluster's database is looked at while it works
FAST_CLUSTER = {"heartbeat": "1s", "stalled_after": "3s"}  # as tests/test_cluster.py: a dead worker noticed within seconds
START_TIMEOUT_S = 120.0  # a clusterer to start, the job queue's tables, a process to stop
IDLE_S = 3.0  # the 2-worker cluster's idle CPU is measured this long before its steady round


# -- process groups' CPU ------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, float]]:
    """Every process: pid -> (parent pid, CPU seconds of its own plus of the children it reaped)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        out[int(name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    return out


def group_cpu_s(groups: dict[str, Iterable[int]], exclude: Iterable[int] = ()) -> dict[str, float]:
    """CPU seconds used so far by each group of process trees (roots and their descendants; subtrees
    rooted at ``exclude`` left out). A member that ended counts through the parent that reaped it,
    so differences between two calls are exact while the roots live."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)
    skip = set(exclude)
    out = {}
    for name, roots in groups.items():
        total, stack, seen = 0.0, [r for r in roots if r in table], set()
        while stack:
            pid = stack.pop()
            if pid in seen or pid in skip:
                continue
            seen.add(pid)
            total += table[pid][1]
            stack.extend(children.get(pid, ()))
        out[name] = total
    return out


# -- reader's baseline with the article pages ----------------------------------------------------


def _trafilatura_text(content: bytes, url: str) -> int:
    """trafilatura's documented call, as reader's user would write it; the text's length (what comes back)."""
    import trafilatura

    return len(trafilatura.extract(content, url=url) or "")


def pages_after_reader(links: list[str], per_host: int, max_conc: int, processes: int) -> tuple[float, int]:
    """The work reader leaves to its user for teaser feeds: each entry's page fetched (httpx, our
    fetch limits: ``max_conc`` requests at once, ``per_host`` per host) and its text extracted by
    ``trafilatura.extract`` in ``processes`` processes. Returns (seconds, pages with a text)."""
    import concurrent.futures
    import multiprocessing
    from urllib.parse import urlsplit

    import httpx

    async def run(pool: concurrent.futures.ProcessPoolExecutor) -> int:
        everything = asyncio.Semaphore(max_conc)
        hosts: dict[str, asyncio.Semaphore] = {}
        loop = asyncio.get_running_loop()

        async def one(client: httpx.AsyncClient, url: str) -> int:
            host = hosts.setdefault(urlsplit(url).netloc, asyncio.Semaphore(per_host))
            async with host, everything:
                response = await client.get(url)
            return await loop.run_in_executor(pool, _trafilatura_text, response.content, url)

        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=max_conc), timeout=60) as client:
            lengths = await asyncio.gather(*(one(client, u) for u in links))
        return sum(1 for n in lengths if n)

    t0 = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("forkserver")) as pool:
        texts = asyncio.run(run(pool))
    return time.perf_counter() - t0, texts


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


# -- the cluster's processes ---------------------------------------------------------------------


class Cluster:
    """One cluster on its own database: a clusterer and workers as ``python -m aggregator`` processes,
    each writing its output to ``<dir>/<name>.log``; the database watched through one connection."""

    def __init__(self, directory: Path, database_url: str, feed_urls: list[str], env: dict[str, str]) -> None:
        import psycopg

        from aggregator.store.locks import libpq_url

        self.dir, self.url, self.env = directory, database_url, env
        directory.mkdir(parents=True)
        self.config = directory / "feeds.yaml"  # JSON is YAML
        self.config.write_text(json.dumps({
            "settings": {"storage": str(directory), "database_url": database_url, "timezone": "UTC", "allow_hosts": ["127.0.0.1"],
                         "cluster": FAST_CLUSTER},
            "feeds": [{"url": u, "name": f"feed{i}"} for i, u in enumerate(feed_urls)],
        }))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.exit_codes: dict[str, int | None] = {}
        self._conn = psycopg.connect(libpq_url(database_url), autocommit=True)
        self._seq: str | None = None

    # processes

    def start(self, name: str, *command: str, core: int | None = None) -> subprocess.Popen[bytes]:
        """``core``: the process (and the processes it starts: its extraction pool) runs on that core only."""
        pin = None if core is None else (lambda: os.sched_setaffinity(0, {core}))
        with (self.dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "aggregator", *command, "--config", str(self.config)],
                                    stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.dir, preexec_fn=pin)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def tails(self) -> str:
        return "\n".join(f"--- {name} ({self.dir / (name + '.log')}):\n" + "\n".join(self.log(name).splitlines()[-15:])
                         for name in self.procs)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"cluster process {name} exited ({proc.returncode}) before the round was done\n{self.tails()}")

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float) -> None:
        """Look every ``POLL_S`` until ``predicate`` holds; a clear error (and the logs' tails) after ``timeout``."""
        end = time.monotonic() + timeout
        while not predicate():
            self.check_alive()
            if time.monotonic() > end:
                raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what} ({self.dir})\n{self.tails()}")
            time.sleep(POLL_S)

    def stop(self, name: str) -> int | None:
        """SIGTERM (running jobs finish first), SIGKILL if that takes too long."""
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            code = None
        self.exit_codes[name] = code
        return code

    def close(self) -> None:
        for name in [n for n in self.procs if n != "clusterer"] + [n for n in self.procs if n == "clusterer"]:
            self.stop(name)
        self._conn.close()

    def pids(self, prefix: str) -> list[int]:
        return [p.pid for n, p in self.procs.items() if n.startswith(prefix)]

    def tracebacks(self) -> int:
        return sum(self.log(p.name.removesuffix(".log")).count("Traceback") for p in self.dir.glob("*.log"))

    # the database

    def query(self, sql: str, *args: Any) -> Any:
        row = self._conn.execute(sql, args).fetchone()
        return row[0] if row else None

    def counts(self) -> tuple[int, int, int]:
        """(articles stored, answers waiting in the inbox, answers ever left in the inbox)."""
        if self._seq is None:
            self._seq = self.query("SELECT pg_get_serial_sequence('inbox', 'id')")
            if self._seq is None:
                raise RuntimeError("the inbox has no id sequence: cannot count the answers left in it")
        row = self._conn.execute(
            f"SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM inbox),"  # noqa: S608 (a name the server gave)
            f" (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {self._seq})").fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def job_ids_used(self) -> int:
        """Ids the job queue has handed out: every job deferred (polls, the periodic ``due``) and every
        deferral refused as already queued (a failed insert uses its id too); done jobs are deleted."""
        seq = self.query("SELECT pg_get_serial_sequence('procrastinate_jobs', 'id')")
        return int(self.query(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq}")) if seq else 0  # noqa: S608

    def stories_by_url(self) -> dict[str, int]:
        return {u: s for u, s in self._conn.execute("SELECT a.url, m.story_id FROM articles a JOIN story_members m ON m.article_id = a.id")}


def _create_queue_tables(url: str) -> float:
    """procrastinate's tables, as the first worker would create them; seconds it took."""
    from procrastinate import App

    from aggregator.cluster.jobs import ensure_queue_schema, queue_connector

    async def create() -> None:
        app = App(connector=queue_connector(url, 2))
        async with app.open_async():
            await ensure_queue_schema(app, url)

    t0 = time.perf_counter()
    asyncio.run(create())
    return time.perf_counter() - t0


# -- the benchmark -------------------------------------------------------------------------------


def bench_cluster(p: dict[str, Any], tmp: Path) -> dict[str, Any]:
    from aggregator.tools.pgserver import TemporaryPostgres, find_binaries

    found = find_binaries()
    if isinstance(found, str):
        return {"skipped": found}

    from aggregator.factory import make_aggregator
    from aggregator.pool import Pool
    from aggregator.tools.scoring import score

    from .inputs import Item, Outlet, Vocabulary, plant_items, render_feed, render_page

    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    from reader import make_reader

    n_feeds, n_hosts, k = int(p["feeds"]), int(p["hosts"]), int(p["items"])
    me = os.getpid()
    t_gen = time.perf_counter()
    vocab = Vocabulary()
    rng = np.random.default_rng(13)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    outlets = [Outlet(f"c{f}", f"Feed {f}") for f in range(n_feeds)]
    items = plant_items(vocab, outlets, k, now - timedelta(hours=30), 24.0, seed=29)
    by_outlet: dict[str, list[Item]] = {o.slug: [] for o in outlets}
    for it in items:
        by_outlet[it.outlet.slug].append(it)
    for mine in by_outlet.values():
        mine.sort(key=lambda it: it.published, reverse=True)
    titles = [it.text.title for it in items[:40]]
    page_bytes = 0

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("AGGREGATOR_CONFIG", None)
    remote = RemoteSites(n_hosts, tmp)
    try:
        def host(f: int) -> int:
            return f % n_hosts

        def feed_route(f: int, mine: list[Item]) -> tuple[bytes, str]:
            return render_feed(outlets[f], mine, remote.base_urls[host(f)], full=False), "application/rss+xml; charset=utf-8"

        tables: list[dict[str, tuple[bytes, str]]] = [{} for _ in range(n_hosts)]
        for f, o in enumerate(outlets):
            for j, it in enumerate(by_outlet[o.slug]):
                body = render_page(it, titles[(f + j) % 7 : (f + j) % 7 + 12])
                page_bytes += len(body)
                tables[host(f)][it.path] = (body, "text/html; charset=utf-8")
            tables[host(f)][f"/feeds/{f}.xml"] = feed_route(f, by_outlet[o.slug])
        remote.serve(tables)
        del tables
        urls = [remote.base_urls[host(f)] + f"/feeds/{f}.xml" for f in range(n_feeds)]
        generate_s = time.perf_counter() - t_gen

        def served() -> dict[str, Any]:
            stats = remote.stats()
            hits: dict[int, int] = {}
            for s in stats:
                for status, n in s["hits"].items():
                    hits[status] = hits.get(status, 0) + n
            return {"statuses": hits, "max_in_flight_per_host": max(s["max_in_flight"] for s in stats)}

        # 1a. reader: the feeds only
        reader = make_reader(str(tmp / "cluster-reader.sqlite"), search_enabled=False)
        config = make_config(tmp / "cluster-single", urls)
        max_conc = config.settings.fetch.max_concurrency
        try:
            for u in urls:
                reader.add_feed(u)
            remote.reset_counters()
            c0, s0, t0 = group_cpu_s({"me": [me]}, exclude=[remote.pid])["me"], group_cpu_s({"s": [remote.pid]})["s"], time.perf_counter()
            reader.update_feeds(scheduled=False, workers=max_conc)
            reader_s = time.perf_counter() - t0
            reader_cpu = {"process": group_cpu_s({"me": [me]}, exclude=[remote.pid])["me"] - c0,
                          "server": group_cpu_s({"s": [remote.pid]})["s"] - s0}
            reader_entries = reader.get_entry_counts().total
            reader_served = served()
            # 1a'. what reader leaves to its user here: the pages (the same fetch limits, extraction on every core)
            links = [e.link for e in reader.get_entries() if e.link]
            processes = Pool(0).workers  # as many extraction processes as our own pool has
            c0 = group_cpu_s({"me": [me]}, exclude=[remote.pid])["me"]
            pages_s, pages_texts = pages_after_reader(links, config.settings.fetch.per_host_concurrency, max_conc, processes)
            pages_cpu = group_cpu_s({"me": [me]}, exclude=[remote.pid])["me"] - c0
            pages_served = served()  # (counted since reader's round began: its feeds and the pages)
        finally:
            reader.close()
        if reader_entries != len(items):
            raise RuntimeError(f"reader stored {reader_entries} entries of {len(items)}")

        # 1b. our single process, the same round
        agg = make_aggregator(config)
        single: dict[str, Any] = {}
        try:
            agg.ensure_index()

            def single_round(label: str) -> tuple[float, dict[str, float], list[Any], dict[str, Any]]:
                remote.reset_counters()
                before = group_cpu_s({"me": [me]}, exclude=[remote.pid, *others])["me"], group_cpu_s({"s": [remote.pid]})["s"]
                t0 = time.perf_counter()
                reports = asyncio.run(agg.poll_round(due_only=False))
                wall = time.perf_counter() - t0
                after = group_cpu_s({"me": [me]}, exclude=[remote.pid, *others])["me"], group_cpu_s({"s": [remote.pid]})["s"]
                cpu = {"process_and_pool": after[0] - before[0], "server": after[1] - before[1]}
                errors = [r.error for r in reports if r.error]
                if errors:
                    raise RuntimeError(f"single process, {label}: {len(errors)} feed errors: {errors[:3]}")
                return wall, cpu, reports, served()

            others: list[int] = []  # process trees (the PostgreSQL server, the clusters) not counted as the single process's
            single_s, single_cpu, reports, single_served = single_round("first round")
            single_stored = sum(new_of(r) for r in reports)
            if single_stored != len(items):
                raise RuntimeError(f"single process stored {single_stored} articles of {len(items)}")
            with agg.store.engine.connect() as conn:
                single_stories = {u: s for u, s in conn.exec_driver_sql(
                    "SELECT a.url, m.story_id FROM articles a JOIN story_members m ON m.article_id = a.id")}

            # 1c. the clusters
            pages_again_s = pages_s  # (measured again after the worker-alone round, below)
            with TemporaryPostgres(found) as pg:
                postmaster = _postmaster_pid(pg.data_dir)
                others += [postmaster]
                clusters: dict[int, dict[str, Any]] = {}
                pinned: dict[int, dict[str, Any]] = {}
                live: Cluster | None = None
                try:
                    for workers in (1, 2):
                        cl = Cluster(tmp / f"cluster-{workers}w", pg.create_database(f"bench_{workers}w"), urls, env)
                        live = cl
                        clusters[workers] = first_round(cl, workers, n_feeds, len(items), remote, postmaster, others, served)
                        clusters[workers]["agreement_with_single_bcubed_f1"] = score(cl.stories_by_url(), single_stories).bcubed_f1
                        clusters[workers]["stories"] = len(set(cl.stories_by_url().values()))
                        if workers == 1:
                            cl.close()
                            live = None
                            clusters[1]["exit_codes"] = cl.exit_codes
                            # the worker on cores of its own: the clusterer away until every answer is in
                            cl = Cluster(tmp / "cluster-1w-alone", pg.create_database("bench_1w_alone"), urls, env)
                            live = cl
                            alone = first_round(cl, 1, n_feeds, len(items), remote, postmaster, others, served, alone=True)
                            alone["agreement_with_single_bcubed_f1"] = score(cl.stories_by_url(), single_stories).bcubed_f1
                            cl.close()
                            live = None
                            alone["exit_codes"] = cl.exit_codes
                            # reader's pages again: this shared machine's speed drifts over minutes, so the baseline
                            # is the mean of a run before the worker's and one right after it
                            pages_again_s = pages_after_reader(links, config.settings.fetch.per_host_concurrency, max_conc, processes)[0]
                            # a core per worker: 1 worker on 1 core, then 2 workers on 2 (the clusterer away, as above)
                            if len(os.sched_getaffinity(0)) >= 2:
                                for n in (1, 2):
                                    cl = Cluster(tmp / f"cluster-{n}w-pinned", pg.create_database(f"bench_{n}w_pinned"), urls, env)
                                    live = cl
                                    pinned[n] = first_round(cl, n, n_feeds, len(items), remote, postmaster, others, served,
                                                            alone=True, cores=list(range(n)))
                                    cl.close()
                                    live = None
                            clusters[1]["log_tracebacks"] = cl.tracebacks()

                    # 2. the steady round: a share of the feeds publish one item, the rest answer 304
                    changed = sorted(int(i) for i in rng.choice(n_feeds, size=max(1, int(n_feeds * p["changed"])), replace=False))
                    tables = [{} for _ in range(n_hosts)]
                    for f in changed:
                        o = outlets[f]
                        text = vocab.text(vocab.event(700_000_000 + f), seed=f, words=int(rng.integers(400, 800)))
                        new = Item(o, f"n{f}", 700_000_000 + f, "original", now - timedelta(minutes=5), text)
                        mine = [new, *by_outlet[o.slug][:-1]]
                        tables[host(f)][new.path] = (render_page(new, titles[f % 7 : f % 7 + 12]), "text/html; charset=utf-8")
                        tables[host(f)][f"/feeds/{f}.xml"] = feed_route(f, mine)
                    remote.serve(tables)
                    del tables

                    s_wall, s_cpu, reports, s_served = single_round("steady round")
                    s_new = sum(new_of(r) for r in reports)
                    s_304 = sum(1 for r in reports if r.not_modified)
                    if s_new != len(changed) or s_304 != n_feeds - len(changed):
                        raise RuntimeError(f"single process, steady round: {s_new} new (expected {len(changed)}), "
                                           f"{s_304} not modified (expected {n_feeds - len(changed)})")
                    single = {"wall_s": s_wall, "cpu_s": s_cpu, "new_articles": s_new, "not_modified": s_304, "served": s_served}
                    assert live is not None
                    steady = steady_round(live, n_feeds, len(items) + len(changed), len(changed), remote, postmaster, others, served)
                finally:
                    if live is not None:
                        live.close()
                        clusters[2]["exit_codes"] = live.exit_codes
                        clusters[2]["log_tracebacks"] = live.tracebacks()
        finally:
            agg.close()
    finally:
        remote.close()
    runs = [pages_s, pages_again_s]
    with_pages = {"wall_s": reader_s + sum(runs) / len(runs), "pages_s": sum(runs) / len(runs), "pages_s_runs": runs,
                  "pages_runs": "one before our rounds, one right after the worker-alone round (their mean: the machine's speed drifts)",
                  "pages_with_text": pages_texts, "processes": processes, "pages_cpu_s": pages_cpu, "served": pages_served}
    return figures(p, n_feeds, n_hosts, k, len(items), page_bytes, generate_s, reader_s, reader_cpu, reader_served,
                   single_s, single_cpu, single_served, clusters, single, steady, len(changed), max_conc, tmp, with_pages, alone,
                   pinned)


def first_round(cl: Cluster, workers: int, n_feeds: int, n_articles: int, remote: RemoteSites, postmaster: int,
                others: list[int], served: Callable[[], dict[str, Any]], alone: bool = False,
                cores: list[int] | None = None) -> dict[str, Any]:
    """Start the clusterer, let it go idle, create the queue's tables, then time the workers' first round.
    ``alone``: the clusterer stops once it stored the feed list and starts again only when the workers
    left every answer, as if it ran on another machine (the workers share the cores with PostgreSQL only).
    ``cores``: worker ``i`` runs on core ``cores[i]`` only (its extraction pool too)."""
    cl.start("clusterer", "clusterer")
    others.append(cl.procs["clusterer"].pid)
    cl.wait(lambda: "clusterer started" in cl.log("clusterer"), "the clusterer to start", START_TIMEOUT_S)
    queue_tables_s = _create_queue_tables(cl.url)
    if alone:
        cl.stop("clusterer")
    else:
        time.sleep(1.0)  # the clusterer idle: its start-up (imports, feed list, index) is over
    remote.reset_counters()

    def groups() -> dict[str, float]:
        return group_cpu_s({"workers": cl.pids("worker"), "clusterer": cl.pids("clusterer"), "postgres": [postmaster],
                            "server": [remote.pid]})

    base, jobs0 = groups(), cl.job_ids_used()
    t0 = time.perf_counter()
    for i in range(workers):
        cl.start(f"worker{i}", "worker", core=cores[i] if cores else None)
        others.append(cl.procs[f"worker{i}"].pid)
    marks: dict[str, float] = {}
    cpu_at: dict[str, dict[str, float]] = {}
    seen: dict[str, int] = {}

    def done() -> bool:
        articles, waiting, answers = cl.counts()
        seen.update(articles=articles, inbox=waiting, answers=answers)
        t = time.perf_counter() - t0
        if answers and "first_answer" not in marks:
            marks["first_answer"] = t
            cpu_at["first_answer"] = groups()
        if answers >= n_feeds and "last_answer" not in marks:
            marks["last_answer"] = t
            cpu_at["last_answer"] = groups()
            if alone:
                cl.start("clusterer", "clusterer")
                others.append(cl.procs["clusterer"].pid)
        return answers >= n_feeds and articles >= n_articles and waiting == 0

    cl.wait(done, f"{workers} worker(s) to leave {n_feeds} answers and the clusterer to store {n_articles} articles",
            120 + 0.15 * n_articles)
    wall = time.perf_counter() - t0
    end, main = groups(), process_cpu_s(cl.pids("worker"))
    if seen["articles"] != n_articles or seen["answers"] != n_feeds:
        raise RuntimeError(f"{workers} worker(s): {seen['articles']} articles stored (expected {n_articles}), "
                           f"{seen['answers']} answers left (expected {n_feeds})")
    cpu = {g: end[g] - base.get(g, 0.0) for g in end}
    cpu["workers_main_processes"], cpu["workers_extraction_pools"] = main, cpu["workers"] - main
    cpu_to_last = {g: cpu_at["last_answer"][g] - base.get(g, 0.0) for g in end}
    cpu_to_first = {g: cpu_at["first_answer"][g] - base.get(g, 0.0) for g in end}
    return {"wall_s": wall, "first_answer_s": marks["first_answer"], "last_answer_s": marks["last_answer"],
            "store_latency_s": wall - marks["last_answer"], "answers_in_between_s": marks["last_answer"] - marks["first_answer"],
            "cpu_s": cpu, "cpu_s_until_last_answer": cpu_to_last,
            "cpu_s_until_first_answer": cpu_to_first, "queue_tables_s_not_counted": queue_tables_s,
            "articles": seen["articles"], "answers": seen["answers"], "served": served(), "logs": str(cl.dir),
            "job_ids_used": cl.job_ids_used() - jobs0, "feeds": n_feeds}


def steady_round(cl: Cluster, n_feeds: int, n_articles: int, n_new: int, remote: RemoteSites, postmaster: int,
                 others: list[int], served: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Every feed of the running cluster due now (``UPDATE feeds SET next_poll_at``); the CPU of the round."""
    def groups() -> dict[str, float]:
        return group_cpu_s({"workers": cl.pids("worker"), "clusterer": cl.pids("clusterer"), "postgres": [postmaster],
                            "server": [remote.pid]})

    answers0 = cl.counts()[2]
    idle0, t_idle = groups(), time.perf_counter()
    time.sleep(IDLE_S)
    idle1 = groups()
    idle_s = time.perf_counter() - t_idle
    idle_rate = {g: (idle1[g] - idle0[g]) / idle_s for g in idle1}
    remote.reset_counters()
    mark = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)  # naive UTC, as the store keeps times
    base, main0, jobs0, t0 = groups(), process_cpu_s(cl.pids("worker")), cl.job_ids_used(), time.perf_counter()
    cl.query("UPDATE feeds SET next_poll_at = %s RETURNING 1", mark)
    seen: dict[str, int] = {}

    def done() -> bool:
        articles, waiting, answers = cl.counts()
        pending = cl.query("SELECT count(*) FROM feeds WHERE next_poll_at IS NULL OR next_poll_at <= %s", mark)
        seen.update(articles=articles, inbox=waiting, answers=answers - answers0, pending=int(pending))
        return pending == 0 and articles >= n_articles and waiting == 0

    cl.wait(done, f"the cluster's steady round ({n_feeds} feeds due, {n_new} new articles)", 120 + 0.5 * n_feeds)
    wall = time.perf_counter() - t0
    end, main1 = groups(), process_cpu_s(cl.pids("worker"))
    out = served()
    if seen["articles"] != n_articles:
        raise RuntimeError(f"cluster steady round: {seen['articles']} articles stored (expected {n_articles})")
    if out["statuses"].get(304, 0) != n_feeds - n_new:
        raise RuntimeError(f"cluster steady round: {out['statuses']} answered (expected {n_feeds - n_new} 304s)")
    cpu = {g: end[g] - base[g] for g in end}
    cpu["workers_main_processes"] = main1 - main0
    return {"wall_s": wall, "cpu_s": cpu, "idle_cpu_per_s": idle_rate, "idle_measured_s": idle_s, "answers_in_inbox": seen["answers"],
            "new_articles": n_new, "served": out, "job_ids_used": cl.job_ids_used() - jobs0}


def figures(p: dict[str, Any], n_feeds: int, n_hosts: int, k: int, n_articles: int, page_bytes: int, generate_s: float,
            reader_s: float, reader_cpu: dict[str, float], reader_served: dict[str, Any], single_s: float,
            single_cpu: dict[str, float], single_served: dict[str, Any], clusters: dict[int, dict[str, Any]],
            single: dict[str, Any], steady: dict[str, Any], n_changed: int, max_conc: int, tmp: Path,
            with_pages: dict[str, Any], alone: dict[str, Any], pinned: dict[int, dict[str, Any]]) -> dict[str, Any]:
    one, two = clusters[1], clusters[2]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    input_ = {"feeds": n_feeds, "hosts": n_hosts, "items_per_feed": k, "articles": n_articles, "teaser_feeds": True,
              "mean_page_kb": page_bytes / n_articles / 1024, "generate_s": generate_s, "cores": cores}
    reader_base = {"name": f"reader {_version('reader')} update_feeds(workers={max_conc}, scheduled=False), first round on a fresh "
                           "database (feeds only: reader fetches no article page)", "wall_s": reader_s, "cpu_s": reader_cpu,
                   "served": reader_served}
    how = ("wall time from starting the worker processes (clusterer already up and idle; procrastinate's tables created "
           "beforehand, their time reported as queue_tables_s_not_counted) until every article is stored and the inbox is empty, "
           f"the database polled every {POLL_S}s; last_answer_s: the last answer in the inbox (the workers' throughput); "
           "store_latency_s: from then until stored (the clusterer holds answers backlog.ROUND_HOLD_S)")
    cl_details = {str(w): c for w, c in clusters.items()}
    r1 = reader_s / one["wall_s"]
    r21 = one["wall_s"] / two["wall_s"]
    single_ratio = reader_s / single_s
    # Wall time can never be below the CPU work of every process of the round spread over every core:
    # the most the 2-worker ratio could reach on this machine at the CPU the 2-worker round took.
    work2 = sum(two["cpu_s"][g] for g in ("workers", "clusterer", "postgres", "server"))
    ceiling = one["wall_s"] / (work2 / (cores or 1))
    cpu_cluster = steady["cpu_s"]["workers"] + steady["cpu_s"]["clusterer"]
    cpu_single = single["cpu_s"]["process_and_pool"]
    ms_cluster, ms_single = 1000 * cpu_cluster / n_feeds, 1000 * cpu_single / n_feeds
    idle = steady["idle_cpu_per_s"]
    idle_part = (idle["workers"] + idle["clusterer"]) * steady["wall_s"]
    at_scale = n_feeds >= 1000
    reader_pages_s = with_pages["wall_s"]
    reader_pages_base = {"name": f"reader {_version('reader')} as above, then what it leaves to its user on teaser feeds: every entry's "
                                 f"page fetched (httpx, max {max_conc} requests at once and the same per-host limit as ours) and "
                                 f"trafilatura.extract(page, url=...) on {with_pages['processes']} processes",
                         **with_pages, "reader_s": reader_s, "reader_cpu_s": reader_cpu}
    reader_pages_cpu = reader_cpu["process"] + with_pages["pages_cpu_s"]
    roles = ("workers", "clusterer", "postgres")
    all1, all2 = (sum(c["cpu_s"][g] for g in roles) for c in (one, two))
    scaling: dict[str, Any] = {}
    if pinned:
        one_core, two_cores = pinned[1]["last_answer_s"], pinned[2]["last_answer_s"]
        # The 2-worker round cannot end before all its processes' CPU spread over both cores (PostgreSQL and the page
        # server ran on the core the single worker left free; with 2 workers they take from the workers' cores).
        pinned_ceiling = one_core / (sum(pinned[2]["cpu_s_until_last_answer"].values()) / 2)
        scaling["cluster_first_round_2_workers_vs_1_a_core_each"] = {
            "value": one_core / two_cores,
            "unit": "ratio (1 worker on 1 core ÷ 2 workers on a core each: time until every answer is in the inbox, the clusterer away)",
            "baseline": {"name": "1 worker pinned to 1 core (its extraction pool too)", "last_answer_s": one_core, "cpu_s": pinned[1]["cpu_s"]},
            "goal": "near-linear with cores: >= 1.8 (issue 17)", "pass": one_core / two_cores >= 1.8, "at_goal_scale": at_scale,
            "details": {"method": "as cluster_first_round_worker_alone_vs_reader_with_pages, each worker process and its pool pinned "
                                  "to a core of its own (sched_setaffinity); PostgreSQL and the page server run on either core, "
                                  "so they take from the workers' cores", "ratio_ceiling_at_this_cpu": pinned_ceiling,
                        "share_of_ceiling": one_core / two_cores / pinned_ceiling, "two_workers": pinned[2], "one_worker": pinned[1],
                        "input": input_},
        }
    return {
        **scaling,
        "cluster_first_round_worker_alone_vs_reader_with_pages": {
            "value": reader_pages_s / alone["last_answer_s"],
            "unit": "ratio (reader + the pages' fetch and extraction, wall time ÷ 1 worker's until its last answer is in the inbox, "
                    "the clusterer away meanwhile: the worker shares the cores with PostgreSQL only)",
            "baseline": reader_pages_base,
            "goal": ">= 1 (issue 17, against reader doing the same work: a worker is no slower than reader on a first round)",
            "pass": reader_pages_s / alone["last_answer_s"] >= 1, "at_goal_scale": at_scale,
            "details": {"method": "the clusterer stores the feed list and stops; the clock runs from starting the worker until "
                                  "every feed's answer is in the inbox; then the clusterer starts again and stores them (not timed "
                                  "here: its own machine's work)", "input": input_, **alone},
        },
        "cluster_first_round_worker_cpu_vs_reader_with_pages": {
            "value": reader_pages_cpu / one["cpu_s"]["workers"],
            "unit": "ratio (CPU seconds of reader + the pages' fetch and extraction ÷ the worker's, pool included, same first round)",
            "baseline": reader_pages_base,
            "goal": "none set: >= 1 means a worker needs no more CPU than reader doing the same work, so on machines of its own "
                    "(the clusterer and PostgreSQL elsewhere) it is at least as fast on the same cores",
            "pass": None, "at_goal_scale": at_scale,
            "details": {"reader_with_pages_cpu_s": reader_pages_cpu, "worker_cpu_s": one["cpu_s"]["workers"],
                        "whole_cluster_cpu_s": all1, "ratio_with_clusterer_and_postgres": reader_pages_cpu / all1, "input": input_},
        },
        "cluster_first_round_cpu_1_worker_vs_2": {
            "value": all1 / all2,
            "unit": "ratio (CPU seconds of the whole cluster, workers + clusterer + PostgreSQL, with 1 worker ÷ with 2, same first round)",
            "baseline": {"name": "the same cluster with 1 worker", "cpu_s": one["cpu_s"]},
            "goal": "none set: 1 means a second worker adds no work (its polls' coordination costs nothing more), so the "
                    "round's throughput grows with the cores given to workers; this 2-core machine cannot show it in wall time",
            "pass": None, "at_goal_scale": at_scale,
            "details": {"cpu_s_1_worker": all1, "cpu_s_2_workers": all2, "cpu_2_workers": two["cpu_s"], "input": input_},
        },
        "cluster_first_round_1_worker_vs_reader_with_pages": {
            "value": reader_pages_s / one["wall_s"],
            "unit": "ratio (reader + the pages' fetch and extraction, wall time ÷ 1 worker + clusterer's, same feeds)",
            "baseline": reader_pages_base,
            "goal": "none set: the issue's goal is against reader alone (above), which fetches no page; this is the same work",
            "pass": None, "at_goal_scale": at_scale,
            "details": {"method": how, "ratio_at_last_answer": reader_pages_s / one["last_answer_s"],
                        "single_process_vs_reader_with_pages": reader_pages_s / single_s, "input": input_},
        },
        "cluster_first_round_1_worker_vs_reader": {
            "value": r1, "unit": "ratio (reader first-round wall time ÷ 1 worker + clusterer, same feeds)",
            "baseline": reader_base, "goal": ">= 1 (issue 17: a worker is no slower than reader on a first round)", "pass": r1 >= 1,
            "at_goal_scale": at_scale,
            "details": {"method": how, "ratio_at_last_answer": reader_s / one["last_answer_s"], "input": input_,
                        "single_process_first_round_s": single_s, "clusters": cl_details, "logs": str(tmp)},
        },
        "cluster_first_round_2_workers_vs_1": {
            "value": r21, "unit": "ratio (1 worker's first-round wall time ÷ 2 workers', each with the clusterer, same feeds)",
            "baseline": {"name": "the same cluster with 1 worker", "wall_s": one["wall_s"], "last_answer_s": one["last_answer_s"]},
            "goal": "about 2 on 2 cores (near-linear): >= 1.8", "pass": r21 >= 1.8, "at_goal_scale": at_scale,
            "details": {"method": how, "wall_s": two["wall_s"], "ratio_at_last_answer": one["last_answer_s"] / two["last_answer_s"],
                        "ratio_first_to_last_answer": one["answers_in_between_s"] / two["answers_in_between_s"],
                        "cores": cores, "ratio_ceiling_at_this_cpu": ceiling,
                        "cpu_s_all_processes_2_workers": work2, "input": input_},
        },
        "cluster_first_round_single_process_vs_reader": {
            "value": single_ratio, "unit": "ratio (reader first-round wall time ÷ our single SQLite process's, same feeds)",
            "baseline": reader_base, "goal": "none (context for the cluster's figures)", "pass": None, "at_goal_scale": at_scale,
            "details": {"wall_s": single_s, "cpu_s": single_cpu, "served": single_served, "extract_pages": True, "input": input_},
        },
        "cluster_steady_cpu_per_feed_vs_single": {
            "value": ms_cluster / ms_single,
            "unit": "ratio (CPU ms per feed of the cluster's workers + clusterer ÷ the single process's, incl. its extraction pool, same round)",
            "baseline": {"name": "single SQLite process, poll_round(due_only=False) on the same round", "cpu_ms_per_feed": ms_single,
                         "cpu_s": single["cpu_s"], "wall_s": single["wall_s"], "served": single["served"]},
            "goal": "none set (report: the cluster's overhead per feed)", "pass": None, "at_goal_scale": at_scale,
            "details": {"cluster_cpu_ms_per_feed": ms_cluster, "workers": 2, "cluster_cpu_s": steady["cpu_s"],
                        "cluster_wall_s": steady["wall_s"],
                        "cluster_cpu_ms_per_feed_net_of_idle": 1000 * (cpu_cluster - idle_part) / n_feeds,
                        "cluster_cpu_ms_per_feed_with_postgres": 1000 * (cpu_cluster + steady["cpu_s"]["postgres"]) / n_feeds,
                        "idle_cpu_per_s": idle, "idle_measured_s": steady["idle_measured_s"],
                        "feeds": n_feeds, "changed_feeds": n_changed, "not_modified_feeds": n_feeds - n_changed,
                        "method": "after the first round, in the 2-worker cluster still running: UPDATE feeds SET next_poll_at = now "
                                  "(every feed due; the workers find them within aggregator.cluster.jobs.SCHEDULE_S), then until "
                                  "every feed's next_poll_at moved past that time, the new articles are stored and the inbox is "
                                  "empty; CPU of every worker process (pool included) and the clusterer over that time (idle "
                                  "ticks included: see idle_cpu_per_s and the net figure)",
                        "cluster": steady},
        },
    }
