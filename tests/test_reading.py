"""The reader's side of the store, on real feeds polled from 127.0.0.1: search, read marks and
stories that come back updated, feeds named by their own titles, the config's interval in force."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.factory import make_aggregator, open_library
from aggregator.tools.feedserver import Response
from helpers import cli, write_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STRIKE = ("A government missile strike killed at least 12 people in a village in Idlib province early on Tuesday, the Syrian "
          "Observatory for Human Rights said, in one of the deadliest attacks on the rebel-held region this year. Rescuers pulled "
          "bodies from the rubble of two houses, and the monitor said children were among the dead.")
FERRY = ("The harbour authority opened the new ferry terminal on Monday after three years of building work, promising shorter "
         "queues and a second daily crossing to the islands from the spring timetable onwards.")


def rss(title: str | None, items: list[tuple[str, str, str, datetime]], ttl: int | None = None) -> bytes:
    """An RSS 2.0 body: items are (guid, title, description, published)."""
    head = f"<title>{title}</title>" if title else ""
    head += f"<ttl>{ttl}</ttl>" if ttl else ""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{t}</title><link>http://127.0.0.1/{guid}</link><description>{d}</description>"
        f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
        for guid, t, d, when in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{head}{body}</channel></rss>'.encode()


def serve(routes, path: str, body: bytes) -> None:
    routes[path] = Response(200, body, {"Content-Type": "application/rss+xml"})


def poll(config_path: Path, now: datetime) -> None:
    agg = make_aggregator(load_config(config_path), clock=lambda: now)
    try:
        asyncio.run(agg.poll_round(now, due_only=False))
    finally:
        agg.close()


def two_outlets(tmp_path: Path, server, routes, now: datetime = NOW) -> Path:
    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Strike kills 12 in Idlib, monitor says", STRIKE, now - timedelta(hours=2)),
                                                    ("a2", "Ferry terminal opens", FERRY, now - timedelta(hours=3))]))
    serve(routes, "/b.xml", rss("Coast Radio", [("b1", "At least 12 killed in Idlib strike", STRIKE + " Video showed flattened homes.",
                                                 now - timedelta(hours=1))]))
    feeds = [{"url": server.url("/a.xml"), "name": "Harbour Gazette"}, {"url": server.url("/b.xml"), "name": "Coast Radio"}]
    path = write_config(tmp_path, feeds, extract={"fetch_pages": False}, schedule={"jitter": 0})
    poll(path, now)
    return path


def test_search_groups_matches_by_story_newest_first_with_the_words_marked(tmp_path, server, routes) -> None:
    config = two_outlets(tmp_path, server, routes)
    result = cli("search", "idlib", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert len(found) == 1  # the strike, once, though two outlets reported it
    assert set(found[0]["sources"]) == {"Harbour Gazette", "Coast Radio"}
    hits = found[0]["hits"]
    assert [h["source"] for h in hits] == ["Coast Radio", "Harbour Gazette"]  # newest first
    for hit in hits:
        assert hit["marks"] and all(hit["snippet"][a:b].lower() == "idlib" for a, b in hit["marks"])
    # a phrase must match as a phrase; a word in no article finds nothing
    assert [r["title"] for r in json.loads(cli("search", '"ferry terminal"', "-c", str(config), "--json").stdout)] == ["Ferry terminal opens"]
    assert json.loads(cli("search", '"terminal ferry"', "-c", str(config), "--json").stdout) == []
    assert json.loads(cli("search", "idlib volcano", "-c", str(config), "--json").stdout) == []
    # FTS syntax typed by a user is taken as words, never a parse error; nothing to search for is a usage error
    assert cli("search", 'idlib AND (NOT "', "-c", str(config), "--json").returncode == 0
    empty = cli("search", '"" -- *', "-c", str(config))
    assert empty.returncode == 2 and "nothing to search for" in empty.stderr
    text = cli("search", "Idlib", "-c", str(config))
    assert "Strike kills 12 in Idlib" in text.stdout or "At least 12 killed in Idlib strike" in text.stdout


def test_a_read_story_that_gains_a_source_comes_back_updated_with_what_is_new(tmp_path, server, routes) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)  # `read` marks at the real time: the polls are dated around it
    config = two_outlets(tmp_path, server, routes, now)
    listing = json.loads(cli("clusters", "-c", str(config), "--since", "1d", "--json").stdout)
    strike = next(s for s in listing if "Idlib" in s["title"])
    assert strike["status"] == "unread"
    marked = cli("read", str(strike["id"]), "-c", str(config))
    assert marked.returncode == 0 and "1 story marked read" in marked.stdout
    unread = json.loads(cli("clusters", "-c", str(config), "--since", "1d", "--unread", "--json").stdout)
    assert strike["id"] not in [s["id"] for s in unread] and len(unread) == 1  # the ferry story is still unread

    later = now + timedelta(hours=1)
    serve(routes, "/c.xml", rss("Valley Times", [("c1", "Idlib strike toll at 12", STRIKE + " Funerals were held in the evening.",
                                                  later - timedelta(minutes=30))]))
    path = write_config(tmp_path, [{"url": server.url(p), "name": n} for p, n in
                                   (("/a.xml", "Harbour Gazette"), ("/b.xml", "Coast Radio"), ("/c.xml", "Valley Times"))],
                        extract={"fetch_pages": False}, schedule={"jitter": 0})
    poll(path, later)
    unread = json.loads(cli("clusters", "-c", str(config), "--since", "1d", "--unread", "--json").stdout)
    again = next(s for s in unread if s["id"] == strike["id"])
    assert again["status"] == "updated" and again["new_articles"] == 1
    lib = open_library(load_config(config))
    try:
        story = lib.story(strike["id"])
    finally:
        lib.close()
    assert story is not None and [v.source for v in story.new_variants] == ["Valley Times"]
    shown = cli("story", str(strike["id"]), "-c", str(config))
    assert "updated: 1 new article(s) since read" in shown.stdout
    rows = [line.split("\t") for line in shown.stdout.splitlines() if line.count("\t") == 6]  # to a pipe: a whole line per variant
    assert sorted(r[2] for r in rows) == ["Coast Radio", "Harbour Gazette", "Valley Times"]
    assert [r[6] for r in rows if r[2] == "Valley Times"] == ["new"] and all(r[5].startswith("http://127.0.0.1/") for r in rows)
    assert cli("unread", str(strike["id"]), "-c", str(config)).returncode == 0
    assert next(s for s in json.loads(cli("clusters", "-c", str(config), "--since", "1d", "--json").stdout)
                if s["id"] == strike["id"])["status"] == "unread"
    missing = cli("read", "999999", "-c", str(config))
    assert missing.returncode == 1 and "no story with id 999999" in missing.stderr


def test_a_feed_the_config_does_not_name_goes_by_its_own_title(tmp_path, server, routes) -> None:
    serve(routes, "/a.xml", rss("  Harbour\nGazette  ", [("a1", "Ferry terminal opens", FERRY, NOW - timedelta(hours=1))]))
    url = server.url("/a.xml")
    config = write_config(tmp_path, [{"url": url}], extract={"fetch_pages": False})
    poll(config, NOW)
    listing = json.loads(cli("clusters", "-c", str(config), "--date", "2026-11-20", "--json").stdout)
    assert listing[0]["first_source"] == "Harbour Gazette"  # not 127.0.0.1:port
    assert json.loads(cli("feeds", "-c", str(config), "--json").stdout)[0]["name"] == "Harbour Gazette"
    # named in the config: that name, for the stored articles too; unnamed again: the title again
    poll(write_config(tmp_path, [{"url": url, "name": "The Gazette"}], extract={"fetch_pages": False}), NOW + timedelta(hours=1))
    assert json.loads(cli("clusters", "-c", str(config), "--date", "2026-11-20", "--json").stdout)[0]["first_source"] == "The Gazette"
    poll(write_config(tmp_path, [{"url": url}], extract={"fetch_pages": False}), NOW + timedelta(hours=2))
    assert json.loads(cli("clusters", "-c", str(config), "--date", "2026-11-20", "--json").stdout)[0]["first_source"] == "Harbour Gazette"


@pytest.mark.parametrize(("interval", "expected", "why"), [
    ("10m", timedelta(minutes=10), "set in the config"),  # the feed's <ttl> of two hours does not override the config
    (None, timedelta(hours=2), "learned from the feed"),  # no interval in the config: the feed's hint raises the default
])
def test_the_interval_in_force_is_the_configs_when_it_sets_one(tmp_path, server, routes, interval, expected, why) -> None:
    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Ferry terminal opens", FERRY, NOW - timedelta(hours=1))], ttl=120))
    feed: dict[str, object] = {"url": server.url("/a.xml"), "name": "Harbour Gazette"}
    if interval:
        feed["interval"] = interval
    config = write_config(tmp_path, [feed], extract={"fetch_pages": False}, schedule={"jitter": 0, "default_interval": "15m"})
    poll(config, NOW)
    state = json.loads(cli("feeds", "-c", str(config), "--json").stdout)[0]
    assert datetime.fromisoformat(state["next_poll_at"]) == NOW + expected
    assert state["interval_in_force_s"] == expected.total_seconds() and why in state["interval_reason"]
    listed = cli("feeds", "-c", str(config)).stdout.splitlines()[1].split("\t")  # to a pipe: one whole line per feed
    assert listed[:3] == ["Harbour Gazette", server.url("/a.xml"), "ok"] and listed[5] == ("10m" if interval else "2h")
    assert why in listed[6]


def test_a_story_says_where_its_variants_figures_differ_and_which_is_newest(tmp_path, server, routes) -> None:
    later = STRIKE.replace("killed at least 12 people", "killed 15 people").replace("the Syrian Observatory for Human Rights said",
                                                                                   "local medics said")
    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Strike kills 12 in Idlib, monitor says", STRIKE, NOW - timedelta(hours=3))]))
    serve(routes, "/b.xml", rss("Coast Radio", [("b1", "Idlib strike toll rises to 15", later, NOW - timedelta(hours=1))]))
    config = write_config(tmp_path, [{"url": server.url("/a.xml"), "name": "Harbour Gazette"}, {"url": server.url("/b.xml"), "name": "Coast Radio"}],
                          extract={"fetch_pages": False})
    poll(config, NOW)
    listing = json.loads(cli("clusters", "-c", str(config), "--date", "2026-11-20", "--json").stdout)
    assert len(listing) == 1 and listing[0]["articles"] == 2
    story = json.loads(cli("story", str(listing[0]["id"]), "-c", str(config), "--json").stdout)
    killed = next(g for g in story["facts"] if g["what"] == "killed")
    assert not killed["agree"] and killed["newest"] == "15"
    assert {v["label"]: (v["outlets"], v["attributions"]) for v in killed["values"]} == {
        "12": (["Harbour Gazette"], ["Syrian Observatory for Human Rights"]), "15": (["Coast Radio"], ["local medics"])}
    shown = cli("story", str(listing[0]["id"]), "-c", str(config)).stdout
    assert "facts: killed: 12 (Syrian Observatory for Human Rights, 1 outlet) · 15 (local medics, 1 outlet); newest: 15" in shown


def test_the_clusters_line_ends_with_the_last_update_and_copies_say_of_whom(tmp_path, server, routes) -> None:
    from zoneinfo import ZoneInfo

    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Strike kills 12 in Idlib, monitor says", STRIKE, NOW - timedelta(hours=3))]))
    serve(routes, "/b.xml", rss("Coast Radio", [("b1", "At least 12 killed in Idlib strike", STRIKE, NOW - timedelta(hours=1))]))
    config = write_config(tmp_path, [{"url": server.url("/a.xml"), "name": "Harbour Gazette"}, {"url": server.url("/b.xml"), "name": "Coast Radio"}],
                          extract={"fetch_pages": False}, timezone="Europe/Paris")
    poll(config, NOW)
    (listed,) = json.loads(cli("clusters", "-c", str(config), "--date", "2026-11-20", "--json").stdout)
    assert [(v["source"], v["kind"], v["copy_of"]) for v in listed["variants"]] == [
        ("Harbour Gazette", "canonical", None), ("Coast Radio", "copy", "Harbour Gazette")]
    header, line = cli("clusters", "-c", str(config), "--date", "2026-11-20").stdout.splitlines()  # to a pipe: tab-separated
    assert header.endswith(", all sources, last update")
    fields = line.split("\t")
    assert fields[:5] == [str(listed["id"]), "unread", "2", "Harbour Gazette", "2026-11-20 10:00"]  # the old columns stay where they were
    assert fields[6] == "Harbour Gazette, Coast Radio"
    updated = datetime.fromisoformat(listed["updated_at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert fields[-1] == fields[7] == updated.strftime("%Y-%m-%d %H:%M") == "2026-11-20 13:00"  # local time (the poll's, first seen)
