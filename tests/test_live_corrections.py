"""The reader's corrections while the real daemon runs (a subprocess polling feeds on 127.0.0.1):
the command queues the correction, the daemon applies it on its next tick (its dedup index moves
with the stories), and the command prints what it printed when it made the correction itself."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.store import Store
from aggregator.store.interface import CorrectionRequest
from helpers import cli, count, rows, wait_for, write_config
from test_corrections import HOSPITALS
from test_reading import FERRY, STRIKE, rss, serve

DEADLINE_S = 20


def feeds(server, *paths: str) -> list[dict[str, object]]:
    return [{"url": server.url(f"/{p}.xml"), "name": p.upper()} for p in paths]


def stored(db: Path, query: str) -> dict[object, object]:
    return dict(rows(db, query))


@pytest.fixture
def daemon(tmp_path: Path, server, routes) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """The daemon on three outlets: a strike, its copy, and a hospitals report the rule puts in the strike's story."""
    now = datetime.now(timezone.utc)
    serve(routes, "/a.xml", rss("Gazette", [("a1", "Strike kills 12 in Idlib", STRIKE, now - timedelta(hours=5)),
                                            ("a2", "Ferry terminal opens", FERRY, now - timedelta(hours=5, minutes=30))]))
    serve(routes, "/b.xml", rss("Radio", [("b1", "At least 12 killed in Idlib strike", STRIKE + " Video showed flattened homes.",
                                           now - timedelta(hours=4))]))
    serve(routes, "/c.xml", rss("Courier", [("c1", "Idlib hospitals overwhelmed after strike", HOSPITALS, now - timedelta(hours=3))]))
    config = write_config(tmp_path, feeds(server, "a", "b", "c"), extract={"fetch_pages": False}, schedule={"jitter": 0})
    with (tmp_path / "daemon.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "aggregator", "run", "--config", str(config)], stdout=log, stderr=log)
        try:
            wait_for(lambda: count(tmp_path / "aggregator.db", "story_members") == 4, "the daemon's first round", DEADLINE_S)
            yield config, proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_corrections_are_applied_by_the_running_daemon(daemon, tmp_path: Path, server, routes) -> None:
    config, proc = daemon
    db = tmp_path / "aggregator.db"
    ids = stored(db, "select guid, id from articles")
    story_of = lambda: stored(db, "select article_id, story_id from story_members")  # noqa: E731
    strike = story_of()[ids["a1"]]
    assert story_of()[ids["b1"]] == story_of()[ids["c1"]] == strike

    store = Store(load_config(config).database_url)  # (queued unchecked, as another process may: the daemon checks again)
    try:
        queue = store.correction_queue()
        unchecked = queue.add(CorrectionRequest("merge", strike, 999), datetime.now(timezone.utc))
    finally:
        store.close()

    split = cli("story", "split", str(strike), str(ids["c1"]), "-c", str(config))
    assert split.returncode == 0, split.stderr
    half = story_of()[ids["c1"]]
    assert split.stdout.startswith(f"story {strike} split: 1 article moved to the new story {half} (correction 1;"), split.stdout
    listed = json.loads(cli("clusters", "-c", str(config), "--since", "2d", "--json").stdout)
    groups = {s["id"]: sorted(v["article_id"] for v in s["variants"]) for s in listed}
    assert groups[strike] == sorted([ids["a1"], ids["b1"]]) and groups[half] == [ids["c1"]]
    assert proc.poll() is None, "the daemon keeps running"

    # Mistakes: refused up front where reading tells (as without a daemon), else by the daemon with the reason.
    again = cli("story", "split", str(strike), str(ids["c1"]), "-c", str(config))
    assert again.returncode == 2 and f"article {ids['c1']} is not in story {strike}" in again.stderr, again.stderr
    listing = cli("corrections", "-c", str(config)).stdout  # (the daemon applied the queue in order: the merge first)
    assert f"request {unchecked.id}" in listing and "failed: no story with id 999" in listing, listing

    # A later round (a feed added to the config: the daemon polls it at once) with an article close
    # to both halves: it joins one, and the halves stay apart.
    serve(routes, "/d.xml", rss("Times", [("d1", "Idlib strike: hospitals overwhelmed, 12 dead", STRIKE + " " + HOSPITALS,
                                          datetime.now(timezone.utc) - timedelta(hours=1))]))
    write_config(tmp_path, feeds(server, "a", "b", "c", "d"), extract={"fetch_pages": False}, schedule={"jitter": 0})
    wait_for(lambda: count(db, "story_members") == 5, "the daemon to poll the feed added", DEADLINE_S)
    now = story_of()
    d1 = stored(db, "select guid, id from articles")["d1"]
    assert now[d1] in {strike, half}
    assert now[ids["a1"]] == now[ids["b1"]] == strike and now[ids["c1"]] == half

    undone = cli("corrections", "undo", "1", "-c", str(config), "--wait", "10")
    assert undone.returncode == 0 and undone.stdout.startswith(f"correction 1 undone: split story {strike}: 1 article moved"), undone.stderr
    assert set(story_of().values()) == {strike, now[ids["a2"]]}  # the new story's members, d1 too if it joined it, went back

    ferry = now[ids["a2"]]
    queued = cli("story", "merge", str(strike), str(ferry), "-c", str(config), "--wait", "0")
    assert queued.returncode == 0 and f" queued: merge story {ferry} into story {strike}; the daemon" in queued.stdout, queued.stdout
    wait_for(lambda: story_of()[ids["a2"]] == strike, "the daemon to apply the merge queued without waiting", DEADLINE_S)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()

