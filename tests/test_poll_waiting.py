"""`poll` never says a silent "0 polled": it says who waits and until when; and feeds backing off
because of the config (a blocked address) are retried at once when the config changes."""

from __future__ import annotations

from datetime import timedelta

import yaml

from helpers import cli
from test_reading import FERRY, NOW, rss, serve


def config_file(tmp_path, feeds, allow: bool):
    settings = {"storage": ".", "extract": {"fetch_pages": False}, "schedule": {"jitter": 0}}
    if allow:
        settings["allow_hosts"] = ["127.0.0.1"]
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"settings": settings, "feeds": feeds}), encoding="utf-8")
    return str(path)


def test_a_feed_blocked_by_the_config_is_retried_once_the_config_allows_it(tmp_path, server, routes) -> None:
    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Ferry terminal opens", FERRY, NOW - timedelta(hours=1))]))
    feeds = [{"url": server.url("/a.xml"), "name": "Harbour Gazette", "interval": "30m"}]
    blocked = cli("poll", "-c", config_file(tmp_path, feeds, allow=False))
    assert blocked.returncode == 1 and server.paths() == []  # the guard refused 127.0.0.1: nothing was asked
    again = cli("poll", "-c", config_file(tmp_path, feeds, allow=False))
    assert "0 feed(s) polled" in again.stdout
    assert "1 feed(s) not due yet" in again.stdout and "1 of them backing off after errors" in again.stdout
    assert "`poll --all` polls them now" in again.stdout
    allowed = cli("poll", "-c", config_file(tmp_path, feeds, allow=True))  # the config changed: the feed is due now
    assert allowed.returncode == 0, allowed.stderr
    assert "1 feed(s) polled, 1 new article(s), 0 failed" in allowed.stdout
    assert server.paths() == ["/a.xml"]
    quiet = cli("poll", "-c", config_file(tmp_path, feeds, allow=True))
    assert "0 feed(s) polled" in quiet.stdout and "1 feed(s) not due yet (the next at" in quiet.stdout
    assert "backing off" not in quiet.stdout
