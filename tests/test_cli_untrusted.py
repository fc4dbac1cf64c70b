"""The CLI against what feeds and users really send: text that looks like markup, odd ports,
out-of-range dates, paths that cannot be written. One clear line and an exit code, never a
traceback, and feed text printed as it is."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from aggregator.digest import write_atomically
from aggregator.tools.feedserver import Response
from helpers import aggregator, cli, write_config

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TITLES = ["Stocks [/] slump in Asia as rates rise", "Peace talks resume in Istanbul [video]", "Harbour :fire: crews fight blaze"]


def rss(title: str, items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><guid>{t}</guid><link>http://127.0.0.1/{i}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=i + 1), usegmt=True)}</pubDate><description>{d}</description></item>"
        for i, (t, d) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'.encode()


def test_feed_text_that_looks_like_markup_is_printed_as_it_is(server, routes, tmp_path: Path) -> None:
    # (each its own story: three short items of one outlet sharing a sentence could be one, in an index this young)
    details = ["Traders sold bank shares before the central bank meeting.", "Delegations met at a palace on the Bosphorus.",
               "Firefighters worked through the night at the warehouse."]
    texts = [f"{t}. [updated 14:00] {d}" for t, d in zip(TITLES, details, strict=True)]
    routes["/feed.xml"] = Response(200, rss("Wire", list(zip(TITLES, texts, strict=True))), {"Content-Type": "application/rss+xml"})
    # A redirect to a port that cannot exist is that feed's error, not the round's.
    routes["/moved.xml"] = Response(302, b"", {"Location": "http://127.0.0.1:99999/[/]feed.xml"})
    config = write_config(tmp_path, [{"url": server.url("/feed.xml"), "name": "Tech :fire: News [/]"},
                                     {"url": server.url("/moved.xml"), "name": "Moved"}])
    polled = cli("poll", "--all", "--config", str(config))
    assert polled.returncode == 0 and "Traceback" not in polled.stderr, polled.stderr
    assert "invalid port" in polled.stderr and "[/]feed.xml" in polled.stderr  # the error line, verbatim
    assert "3 new" in polled.stdout

    listed = cli("clusters", "--since", "1d", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    for title in TITLES:
        assert title in listed.stdout
    assert "Tech :fire: News [/]" in listed.stdout and "🔥" not in listed.stdout

    story = cli("story", "1", "--config", str(config))  # the oldest item: the last of the feed
    assert story.returncode == 0, story.stderr
    assert "[updated 14:00]" in story.stdout and f"{TITLES[2]}  (story 1)" in story.stdout

    health = cli("feeds", "--config", str(config))
    assert health.returncode == 0 and "Tech :fire: News [/]" in health.stdout and "invalid port" in health.stdout, health.stderr


def test_opml_names_that_look_like_markup_are_written_whole(tmp_path: Path) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline text="[/] markup" xmlUrl="https://a.example.com/rss"/>'
        '<outline text="Tech :fire: News" xmlUrl="https://b.example.com/rss"/></body></opml>',
        encoding="utf-8",
    )
    result = cli("opml", str(opml))
    assert result.returncode == 0, result.stderr
    assert 'name: "[/] markup"' in result.stdout and 'name: "Tech :fire: News"' in result.stdout
    assert cli("opml", str(tmp_path)).returncode == 2  # a directory: one config error line


def test_out_of_range_dates_and_ids_are_usage_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], timezone="America/New_York")
    for args in (["clusters", "--date", "9999-12-31"], ["clusters", "--since", "0001-01-01T00:00"],
                 ["clusters", "--since", "99999999d"], ["clusters", "--date", "2026-11-26", "--since", "6h"],
                 ["story", "99999999999999999999"]):
        result = cli(*args, "--config", str(config))
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
        assert args[0] == "story" or f"for {args[-2]}" in result.stderr or "not both" in result.stderr, result.stderr  # names the option
    # A time without an offset is the configured zone's, like every time the CLI prints (a database
    # that exists, empty: a reading command does not make one).
    from aggregator.config import load_config
    from aggregator.factory import open_store

    open_store(load_config(config)).close()
    local = cli("clusters", "--since", "2026-11-26T00:00", "--config", str(config))
    assert "stories since 2026-11-26 00:00" in local.stdout, local.stdout


def test_eval_refuses_an_unwritable_out_path_before_it_works(tmp_path: Path) -> None:
    labeled = tmp_path / "tiny.jsonl"
    labeled.write_text('{"id": "a", "title": "t", "text": "x", "published": null, "source": "s", "url": null, "cluster": "c", "lang": "en"}\n')
    for out in (tmp_path / "missing" / "a.jsonl", tmp_path):
        result = cli("eval", str(labeled), "--out", str(out))
        assert result.returncode == 2 and "--out" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_demo_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    db = tmp_path / "aggregator.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE precious (x)")
    result = cli("demo", "--dir", str(tmp_path))
    assert result.returncode == 1 and "did not write" in result.stderr and "Traceback" not in result.stderr, result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("precious",)]


def test_digest_files_are_readable_like_any_new_file(tmp_path: Path) -> None:
    path = tmp_path / "2026-11-26.md"
    write_atomically(path, "# digest\n")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert path.read_text() == "# digest\n"


def test_a_feed_disabled_by_gone_can_be_enabled_again(server, routes, tmp_path: Path) -> None:
    routes["/feed.xml"] = Response(410, b"gone", {"Content-Type": "text/plain"})
    config = write_config(tmp_path, [{"url": server.url("/feed.xml"), "name": "Wire"}])
    gone = cli("poll", "--all", "--config", str(config))
    assert gone.returncode == 1  # every feed polled failed
    assert gone.stderr.count("HTTP 410") == 1, gone.stderr  # its ✗ line, not a log line repeating it
    state = json.loads(cli("feeds", "--json", "--config", str(config)).stdout)[0]
    assert "410" in (state["disabled_reason"] or "")

    assert cli("feeds", "--enable", "http://127.0.0.1:1/other.xml", "--config", str(config)).returncode == 1
    routes["/feed.xml"] = Response(200, rss("Wire", [("Back online", "The feed answers again.")]), {"Content-Type": "application/rss+xml"})
    enabled = cli("feeds", "--enable", server.url("/feed.xml"), "--config", str(config))
    assert enabled.returncode == 0 and "enabled" in enabled.stderr, enabled.stderr
    assert json.loads(cli("feeds", "--json", "--config", str(config)).stdout)[0]["health"] == "never read"  # it was polled
    polled = cli("poll", "--config", str(config))  # due now, not only with --all
    assert "1 new" in polled.stdout, polled.stdout + polled.stderr


def test_listing_with_another_config_does_not_retune_feeds_and_a_rename_keeps_one_source(server, routes, tmp_path: Path) -> None:
    routes["/feed.xml"] = Response(200, rss("Wire", [("Harbour reopens after storm", "The harbour reopened on Monday after repairs.")]),
                                   {"Content-Type": "application/rss+xml"})
    url = server.url("/feed.xml")
    config = write_config(tmp_path, [{"url": url, "name": "Outlet-X", "interval": "5m"}])
    other = tmp_path / "other"
    other.mkdir()
    second = write_config(other, [{"url": url, "name": "Outlet-Y", "interval": "1d"}], storage=str(tmp_path))
    assert cli("poll", "--all", "--config", str(config)).returncode == 0

    assert cli("feeds", "--config", str(second)).returncode == 0  # a reading command, another config
    state = json.loads(cli("feeds", "--json", "--config", str(config)).stdout)[0]
    assert (state["name"], state["interval_s"]) == ("Outlet-X", 300)

    renamed = write_config(tmp_path, [{"url": url, "name": "Outlet-Z", "interval": "5m"}])  # the same file, edited
    routes["/feed.xml"] = Response(200, rss("Wire", [("Harbour reopens after storm", "The harbour reopened on Monday after repairs."),
                                                     ("Harbour reopens after the storm", "The harbour reopened on Monday after repairs.")]),
                                   {"Content-Type": "application/rss+xml"})
    assert cli("poll", "--all", "--config", str(renamed)).returncode == 0
    stories = json.loads(cli("clusters", "--since", "1d", "--json", "--config", str(renamed)).stdout)
    assert [s["sources"] for s in stories] == [["Outlet-Z"]], stories  # one outlet, before and after its rename


@pytest.mark.sqlite_only  # its config names its own (unreachable) database
def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], database_url="postgresql+psycopg://reader:s3cret@127.0.0.1:1/news")
    result = cli("clusters", "--config", str(config))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "postgresql+psycopg://reader:***@127.0.0.1:1/news" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "s3cret" not in result.stderr  # a password never reaches a message or a log


def test_poll_says_when_a_feed_was_read_but_is_broken(server, routes, tmp_path: Path) -> None:
    """A feed cut off mid-item still gives its complete entries, but its owner has something to
    fix: poll says so on its line (not "✓"), and still succeeds."""
    whole = rss("Wire", [("Harbour reopens after storm", "The harbour reopened on Monday after repairs.")])
    routes["/feed.xml"] = Response(200, whole.replace(b"</channel></rss>", b"<item><title>Cut off"), {"Content-Type": "application/rss+xml"})
    config = write_config(tmp_path, [{"url": server.url("/feed.xml"), "name": "Wire"}])
    polled = cli("poll", "--all", "--config", str(config))
    assert polled.returncode == 0, polled.stderr
    assert "1 new, but the feed is broken" in polled.stderr and polled.stderr.count("broken") == 1, polled.stderr
    assert "✓" not in polled.stdout


def test_polling_a_config_without_feeds_is_a_config_error_that_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("settings:\n  storage: ./store\n", encoding="utf-8")
    # (`run` as a process: were it to start anyway, the daemon would not return)
    for result in (cli("poll", "--config", str(config)), aggregator("run", "--config", str(config))):
        assert result.returncode == 2 and "no feeds to poll" in result.stderr, result.stderr
    assert not (tmp_path / "store").exists()
    config.write_text("feeds: 3\n", encoding="utf-8")
    listed = cli("feeds", "--config", str(config))
    assert listed.returncode == 2 and "feeds: Input should be a list" in listed.stderr, listed.stderr


def test_version_and_help_without_noise() -> None:
    from aggregator import __version__

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"aggregator {__version__}"
    helped = cli("story", "--help")
    assert helped.returncode == 0 and "ID" in helped.stdout
    assert "9223372036854775807" not in helped.stdout and "int range" not in helped.stdout, helped.stdout
    for bad in ("0", str(2**63)):
        refused = cli("story", bad, "--config", "nowhere.yaml")
        assert refused.returncode == 2 and "is not a story id" in refused.stderr, refused.stderr


@pytest.mark.sqlite_only  # about the SQLite file a config names
def test_a_reading_command_without_a_database_says_where_it_looked(tmp_path: Path) -> None:
    """Nothing polled yet: each reading command names the database file it looked for, in one
    line, and makes neither the file nor its directory."""
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed.xml", "name": "Gazette"}], storage="./store")
    for args in (["clusters"], ["story", "1"], ["feeds", "--json"], ["digest"]):
        result = cli(*args, "--config", str(config))
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert str(tmp_path / "store" / "aggregator.db") in result.stderr and "no database here yet" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "store").exists()


def test_workers_and_the_clusterer_say_they_need_postgresql(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed.xml"}], database_url=f"sqlite:///{tmp_path / 'x.db'}")
    for command in ("worker", "clusterer"):
        result = cli(command, "--config", str(config))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "PostgreSQL" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
