"""A running daemon takes a changed config without a restart: feeds added are polled, feeds removed
are not, other settings wait for a restart (and the log says so), and a config that does not load
leaves the daemon running on the one it has. The daemon is a real subprocess; the feeds are served
on 127.0.0.1 and the config is changed with `aggregator feeds add | remove`, as a person would."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from aggregator.config import config_from_dict
from aggregator.core import ConfigChange, config_change
from aggregator.tools.feedserver import LoopbackServer, Request, Response
from helpers import cli, count, wait_for, write_config

DEADLINE_S = 30


def test_config_change_names_what_changed() -> None:
    path = Path("/x/feeds.yaml")
    old = config_from_dict({"settings": {"storage": "."}, "feeds": [
        {"url": "https://a.example/rss", "name": "A"}, {"url": "https://b.example/rss"}, {"url": "https://c.example/rss", "interval": "1h"}]}, path)
    new = config_from_dict({"settings": {"storage": ".", "fetch": {"read_timeout": "5s"}, "allow_hosts": ["10.0.0.0/8"]}, "feeds": [
        {"url": "https://c.example/rss", "interval": "2h"}, {"url": "https://a.example/rss", "name": "A"}, {"url": "https://d.example/rss"}]}, path)
    assert config_change(old, new) == ConfigChange(
        added=("https://d.example/rss",), removed=("https://b.example/rss",), retuned=("https://c.example/rss",),
        settings=("settings.fetch.read_timeout", "settings.allow_hosts"),
    )
    assert not config_change(new, new)


def rss(name: str, *titles: str) -> bytes:
    now = datetime.now(timezone.utc)
    items = "".join(
        f"<item><title>{t}</title><guid>{name}-{i}</guid><link>http://127.0.0.1/{name}/{i}</link>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i + 1), usegmt=True)}</pubDate>"
        f"<description>{t}: the {name} desk reports this on its own, in words no other desk uses, number {i}.</description></item>"
        for i, t in enumerate(titles)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name.title()} Desk</title>{items}</channel></rss>'.encode()


@pytest.fixture
def feeds_server() -> Iterator[LoopbackServer]:
    bodies = {
        "/a.xml": rss("alpha", "Bridge closes for repairs", "Tram line extended"),
        "/b.xml": rss("bravo", "Orchestra tours abroad", "Museum opens new wing"),
    }

    def handle(request: Request) -> Response:
        body = bodies.get(request.path)
        return Response(200, body, {"Content-Type": "application/rss+xml"}) if body else Response(404, b"", {})

    with LoopbackServer(handle) as server:
        yield server






def test_the_daemon_applies_feeds_added_and_removed_without_a_restart(tmp_path: Path, feeds_server: LoopbackServer) -> None:
    a, b = feeds_server.url("/a.xml"), feeds_server.url("/b.xml")
    config = write_config(tmp_path, [{"url": a, "name": "Alpha"}], schedule={"default_interval": "1s", "min_interval": "1s", "jitter": 0},
                          extract={"fetch_pages": False, "workers": 1})
    db, log_path = tmp_path / "aggregator.db", tmp_path / "daemon.log"

    def log() -> str:
        return log_path.read_text(encoding="utf-8", errors="replace")

    def polls(path: str) -> int:
        return sum(1 for r in feeds_server.requests if r.path == path)

    with log_path.open("w", encoding="utf-8") as sink:
        daemon = subprocess.Popen([sys.executable, "-m", "aggregator", "-v", "run", "--config", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=sink, text=True)
    try:
        wait_for(lambda: count(db, "articles") == 2, "the first feed's articles")
        wait_for(lambda: polls("/a.xml") >= 2, "the first feed polled again, on its 1 s interval")

        added = cli("feeds", "add", b, "--config", str(config))
        assert added.returncode == 0, added.stderr
        wait_for(lambda: count(db, "articles") == 4, "the added feed's articles, stored by the running daemon")
        assert f"{b}: polled from now on (added to the config)" in log()

        removed = cli("feeds", "remove", a, "--config", str(config))
        assert removed.returncode == 0, removed.stderr
        wait_for(lambda: f"{a}: no longer polled" in log(), "the removal to be applied")
        time.sleep(0.5)  # a poll of it already under way when the change landed may still arrive
        a_before, b_before = polls("/a.xml"), polls("/b.xml")
        wait_for(lambda: polls("/b.xml") >= b_before + 2, "the remaining feed, still polled")
        assert polls("/a.xml") == a_before, "a feed removed from the config must not be polled"

        # A setting: not applied, and the log says so.
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("settings:\n", "settings:\n  timezone: Europe/Paris\n", 1), encoding="utf-8")
        wait_for(lambda: "changed settings are not applied until the daemon restarts: settings.timezone" in log(), "the settings warning")

        # A config that does not load: one line naming the file, and the daemon goes on.
        config.write_text(text + "- url: ftp://nowhere\n", encoding="utf-8")  # (the layout yaml.safe_dump wrote)
        wait_for(lambda: "config not reloaded" in log(), "the reload error")
        line = next(line for line in log().splitlines() if "config not reloaded" in line)
        assert str(config) in line and "ftp://nowhere" in line and "still running on the config loaded before" in line
        b_now = polls("/b.xml")
        wait_for(lambda: polls("/b.xml") >= b_now + 2, "polling to go on after a bad config")
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0, log()
    assert "Traceback" not in log()


def test_a_new_name_and_a_shorter_interval_apply_at_once(tmp_path: Path, feeds_server: LoopbackServer) -> None:
    """In this process: the daemon's feed, renamed and retimed in the file, is polled by the new
    interval rather than at the time the old one set, and its stored articles take the new name."""
    import asyncio

    from aggregator.config import load_config
    from aggregator.factory import make_aggregator
    from aggregator.schedule import Daemon

    a = feeds_server.url("/a.xml")
    config = write_config(tmp_path, [{"url": a, "name": "Alpha", "interval": "1h"}], schedule={"min_interval": "1s", "jitter": 0},
                          extract={"fetch_pages": False, "workers": 1})
    agg = make_aggregator(load_config(config))
    daemon = Daemon(agg)

    def polls() -> int:
        return sum(1 for r in feeds_server.requests if r.path == "/a.xml")

    async def until(predicate: Callable[[], bool], what: str) -> None:
        end = time.monotonic() + DEADLINE_S
        while not predicate():
            assert time.monotonic() < end, f"timed out waiting for {what}"
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        running = asyncio.create_task(daemon.run())
        try:
            await until(lambda: count(tmp_path / "aggregator.db", "articles") == 2, "the first round")
            assert polls() == 1  # and the next one an hour away
            text = config.read_text(encoding="utf-8")
            config.write_text(text.replace("interval: 1h", "interval: 1s").replace("name: Alpha", "name: Alpha Desk"), encoding="utf-8")
            await until(lambda: polls() >= 3, "polls at the new interval")
        finally:
            daemon.stop()
            await running

    try:
        asyncio.run(scenario())
        assert [f.name for f in agg.feeds()] == ["Alpha Desk"]
        assert {v.source for s in agg.stories_between(datetime.now(timezone.utc) - timedelta(days=1), datetime.now(timezone.utc))
                for v in s.variants} == {"Alpha Desk"}
    finally:
        agg.close()
