"""``aggregator feeds add | remove | export``: feeds found (by address or from a site's page) with the
real fetcher on 127.0.0.1, the config edited in place with every other byte kept, and each refusal
one line with its exit code."""

from __future__ import annotations

import difflib
import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from aggregator.config import load_config
from aggregator.configedit import NewFeed, add_feed, remove_feed
from aggregator.errors import ConfigError
from aggregator.tools.feedserver import Response
from helpers import cli

RSS = "application/rss+xml; charset=utf-8"
HTML = "text/html; charset=utf-8"

CONFIG = """\
# My feeds, versioned in git.
settings:
  storage: .                     # beside this file
  allow_hosts: ["127.0.0.1"]     # the test's feed server
  schedule: {{default_interval: 15m}}

feeds:
  # Local news first.
  - url: '{first}'   # the gazette, quoted
    name: Gazette

  # (more to come)
"""


def rss(title: str | None, *items: str) -> bytes:
    head = f"<title>{title}</title>" if title is not None else ""
    body = "".join(f"<item><title>{t}</title><guid>{t}</guid><description>About {t}.</description></item>" for t in items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>{head}{body}</channel></rss>'.encode()


def atom(title: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>'
            "<entry><title>One</title><id>tag:x,2026:1</id><updated>2026-11-20T10:00:00Z</updated><content>Text</content></entry></feed>").encode()


def page(*links: str, base: str = "") -> bytes:
    base_tag = f'<base href="{base}">' if base else ""
    return f"<!DOCTYPE html><html><head><title>Site</title>{base_tag}{''.join(links)}</head><body><p>Hello</p></body></html>".encode()


@pytest.fixture
def config(tmp_path: Path, server, routes) -> Path:
    routes["/gazette.xml"] = Response(200, rss("The Gazette", "a"), {"Content-Type": RSS})
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG.format(first=server.url("/gazette.xml")), encoding="utf-8")
    return path


def inserted(before: str, after: str) -> list[str]:
    """The lines ``after`` adds to ``before``, asserting it changes nothing else."""
    added: list[str] = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(keepends=True), b=after.splitlines(keepends=True), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        assert op in ("equal", "insert"), (op, before.splitlines()[i1:i2], after.splitlines()[j1:j2])
        if op == "insert":
            added += after.splitlines(keepends=True)[j1:j2]
    return added


def test_add_by_address_appends_two_lines_and_keeps_every_other_byte(config: Path, server, routes) -> None:
    routes["/harbour.xml"] = Response(200, rss("Harbour Times", "x", "y"), {"Content-Type": RSS})
    before = config.read_text(encoding="utf-8")
    result = cli("feeds", "add", server.url("/harbour.xml"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"added {server.url('/harbour.xml')} (Harbour Times) to {config}" in result.stdout
    after = config.read_text(encoding="utf-8")
    assert inserted(before, after) == [f"  - url: {server.url('/harbour.xml')}\n", "    name: Harbour Times\n"]
    assert after.index("name: Harbour Times") < after.index("# (more to come)")  # after the last entry, not after the trailing comment
    assert [(f.name, f.interval) for f in load_config(config).feeds] == [("Gazette", None), ("Harbour Times", None)]
    assert "a running daemon applies this within seconds" in result.stderr
    assert not [p for p in config.parent.iterdir() if p.name.endswith(".tmp")]


def test_name_and_interval_are_written_as_given(config: Path, server, routes) -> None:
    routes["/yes.xml"] = Response(200, rss(None, "x"), {"Content-Type": RSS})
    result = cli("feeds", "add", server.url("/yes.xml"), "--name", "Yes", "--interval", "30m", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert config.read_text(encoding="utf-8").endswith(f'  - url: {server.url("/yes.xml")}\n    name: "Yes"\n    interval: 30m\n\n  # (more to come)\n')
    added = load_config(config).feeds[-1]
    assert (added.name, added.interval) == ("Yes", 1800.0)  # "Yes" quoted: YAML would read a bare Yes as true


def test_a_feed_without_title_gets_no_name(config: Path, server, routes) -> None:
    routes["/untitled.xml"] = Response(200, rss(None, "x"), {"Content-Type": RSS})
    result = cli("feeds", "add", server.url("/untitled.xml"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "no name: the feed has no title" in result.stdout
    assert load_config(config).feeds[-1].name is None


def test_a_page_leads_to_its_main_feed(config: Path, server, routes) -> None:
    routes["/blog/post-1"] = Response(200, page(
        '<link rel="alternate" type="application/json" href="/wp-json/wp/v2/posts/1">',  # a REST API, not a feed: last
        '<link rel="alternate" type="application/rss+xml" title="Blog » Comments Feed" href="/blog/comments/feed">',
        '<link rel="stylesheet" type="text/css" href="/style.css">',
        '<link rel="Alternate" type="application/atom+xml; charset=utf-8" title="Blog" href="../feeds/main.atom">',  # relative to <base>
        f'<link rel="alternate" type="application/feed+json" href="{server.url("/feeds/main.json").replace("http://", "feed://")}">',
        base="/site/index.html",
    ), {"Content-Type": HTML})
    routes["/feeds/main.atom"] = Response(200, atom("The Blog"), {"Content-Type": "application/atom+xml"})
    result = cli("feeds", "add", server.url("/blog/post-1"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"added {server.url('/feeds/main.atom')} (The Blog)" in result.stdout
    assert f"found on {server.url('/blog/post-1')}" in result.stderr
    assert server.url("/blog/comments/feed") in result.stderr  # the others are listed, to add by hand
    assert [f.url for f in load_config(config).feeds][-1] == server.url("/feeds/main.atom")
    fetched = [r.path for r in server.requests]
    assert fetched == ["/blog/post-1", "/feeds/main.atom"]  # the first candidate that reads wins; the rest are not fetched


def test_a_page_whose_first_feed_is_broken_gets_the_next(config: Path, server, routes) -> None:
    routes["/"] = Response(200, page(
        '<link rel="alternate" type="application/rss+xml" href="/gone.xml">',
        '<link rel="alternate" type="application/feed+json" href="/feed.json">',
    ), {"Content-Type": HTML})
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "JSON Wire",
                       "items": [{"id": "1", "title": "Hi", "content_text": "x"}]}).encode()
    routes["/feed.json"] = Response(200, body, {"Content-Type": "application/feed+json"})
    result = cli("feeds", "add", server.url("/"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"added {server.url('/feed.json')} (JSON Wire)" in result.stdout


def test_feed_scheme_and_upper_case_are_read_as_http(config: Path, server, routes) -> None:
    routes["/loud.xml"] = Response(200, rss("Loud", "x"), {"Content-Type": RSS})
    result = cli("feeds", "add", server.url("/loud.xml").replace("http://", "feed://"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert load_config(config).feeds[-1].url == server.url("/loud.xml")
    again = cli("feeds", "add", server.url("/loud.xml").replace("http://", "HTTP://"), "--config", str(config))
    assert again.returncode == 1 and "already in" in again.stderr


def test_a_permanent_redirect_is_followed_and_its_target_written(config: Path, server, routes) -> None:
    routes["/old.xml"] = Response(301, b"", {"Location": "/new.xml"})
    routes["/new.xml"] = Response(200, rss("Moved", "x"), {"Content-Type": RSS})
    result = cli("feeds", "add", server.url("/old.xml"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert load_config(config).feeds[-1].url == server.url("/new.xml")


@pytest.mark.parametrize(
    ("path", "route", "message"),
    [
        ("/plain", Response(200, page('<link rel="icon" href="/i.png">'), {"Content-Type": HTML}),
         'an HTML page, not a feed; and no <link rel="alternate"> in it names an RSS, Atom or JSON feed'),
        ("/missing.xml", None, "HTTP 404"),
        ("/text", Response(200, b"just words", {"Content-Type": "text/plain"}), "not an RSS or Atom feed"),
        ("/bad-links", Response(200, page('<link rel="alternate" type="application/rss+xml" href="/nope.xml">',
                                          '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'),
                                {"Content-Type": HTML}),
         "the page links to 1 feed(s), and none of the 1 tried reads as one: "),
    ],
)
def test_what_is_not_a_feed_is_one_line_and_nothing_changes(config: Path, server, routes, path: str, route: Response | None,
                                                             message: str) -> None:
    if route is not None:
        routes[path] = route
    before = config.read_bytes()
    result = cli("feeds", "add", server.url(path), "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {server.url(path)}: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert config.read_bytes() == before


def test_the_address_guard_applies(tmp_path: Path, server, routes) -> None:
    routes["/feed.xml"] = Response(200, rss("Local", "x"), {"Content-Type": RSS})
    config = tmp_path / "feeds.yaml"
    config.write_text("settings:\n  storage: .\nfeeds: []\n", encoding="utf-8")  # no allow_hosts: loopback is refused
    result = cli("feeds", "add", server.url("/feed.xml"), "--config", str(config))
    assert result.returncode == 1
    assert "blocked:" in result.stderr and "allow_hosts" in result.stderr
    assert server.requests == []
    # ... also for a feed a public page names (here the page itself is allowed, its feed's address is not)
    config.write_text("settings:\n  storage: .\n  allow_hosts: [127.0.0.1]\nfeeds: []\n", encoding="utf-8")
    routes["/"] = Response(200, page('<link rel="alternate" type="application/rss+xml" href="http://169.254.169.254/latest/meta-data">'),
                           {"Content-Type": HTML})
    via_page = cli("feeds", "add", server.url("/"), "--config", str(config))
    assert via_page.returncode == 1 and "blocked:" in via_page.stderr and "169.254.169.254" in via_page.stderr
    assert config.read_text(encoding="utf-8").endswith("feeds: []\n")


def test_already_listed_is_refused_before_anything_is_fetched(config: Path, server) -> None:
    listed = server.url("/gazette.xml")
    for spelling in (listed, listed.replace("http://", "HTTP://") + "?utm_source=rss", listed.replace("http://", "feed://")):
        result = cli("feeds", "add", spelling, "--config", str(config))
        assert result.returncode == 1 and "already in" in result.stderr, result.stderr
    assert server.requests == []


def test_a_page_whose_feed_is_listed_already_is_refused(config: Path, server, routes) -> None:
    routes["/home"] = Response(200, page('<link rel="alternate" type="application/rss+xml" href="/gazette.xml">'), {"Content-Type": HTML})
    result = cli("feeds", "add", server.url("/home"), "--config", str(config))
    assert result.returncode == 1
    assert f"{server.url('/gazette.xml')} (found on {server.url('/home')}): already in" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ftp://example.org/feed"], "feed url must start with http:// or https://"),
        (["http://example.org:99999/feed"], "invalid port"),
        (["http://example.org/feed", "--interval", "soon"], "expected a duration"),
        (["http://example.org/feed", "--name", "  "], "a name needs some text"),
    ],
)
def test_bad_arguments_are_usage_errors(config: Path, args: list[str], fragment: str) -> None:
    result = cli("feeds", "add", *args, "--config", str(config))
    assert result.returncode == 2 and fragment in result.stderr, result.stderr


def test_a_broken_config_is_not_edited(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("settings:\n  storage: .\n  nope: 1\nfeeds: []\n", encoding="utf-8")
    result = cli("feeds", "add", "http://example.org/feed", "--config", str(config))
    assert result.returncode == 2 and "settings.nope" in result.stderr
    assert cli("feeds", "remove", "http://example.org/feed", "--config", str(config)).returncode == 2


def test_remove_takes_the_entry_and_its_comments_and_nothing_else(config: Path, server, routes) -> None:
    routes["/harbour.xml"] = Response(200, rss("Harbour Times", "x"), {"Content-Type": RSS})
    before = config.read_text(encoding="utf-8")
    assert cli("feeds", "add", server.url("/harbour.xml"), "--config", str(config)).returncode == 0
    removed = cli("feeds", "remove", server.url("/harbour.xml").upper().replace("/HARBOUR.XML", "/harbour.xml"), "--config", str(config))
    assert removed.returncode == 0, removed.stderr
    assert "removed" in removed.stdout and "(Harbour Times)" in removed.stdout
    assert config.read_text(encoding="utf-8") == before

    # The last one: an empty list, which loads (a bare `feeds:` would not).
    last = cli("feeds", "remove", server.url("/gazette.xml"), "--config", str(config))
    assert last.returncode == 0, last.stderr
    after = config.read_text(encoding="utf-8")
    assert "feeds: []\n  # Local news first.\n\n  # (more to come)\n" in after and "the gazette" not in after
    assert load_config(config).feeds == ()

    missing = cli("feeds", "remove", "http://example.org/nothing", "--config", str(config))
    assert missing.returncode == 1 and "not a feed of" in missing.stderr


def test_the_group_keeps_its_own_options_and_passes_its_config(config: Path, server, routes) -> None:
    routes["/x.xml"] = Response(200, rss("X", "x"), {"Content-Type": RSS})
    assert cli("feeds", "-c", str(config), "add", server.url("/x.xml")).returncode == 0  # the group's --config
    assert load_config(config).feeds[-1].url == server.url("/x.xml")
    mixed = cli("feeds", "--json", "-c", str(config), "export")
    assert mixed.returncode == 2 and "--json and --enable go with `feeds` alone" in mixed.stderr
    exported = cli("feeds", "export", env={"AGGREGATOR_CONFIG": str(config)})
    assert exported.returncode == 0 and server.url("/x.xml") in exported.stdout
    health = cli("feeds", "--config", str(config))  # no database yet: the health table says where it looked, as before
    assert health.returncode == 1 and "no database here yet" in health.stderr


def test_edits_keep_crlf_a_symlink_and_the_file_mode(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_bytes(b"settings:\r\n  storage: .\r\nfeeds:\r\n  - url: https://a.example.org/rss\r\n")
    os.chmod(real, 0o640)
    link = tmp_path / "feeds.yaml"
    link.symlink_to(real)
    add_feed(link, NewFeed("https://b.example.org/rss", "B"))
    assert link.is_symlink()
    assert real.read_bytes() == b"settings:\r\n  storage: .\r\nfeeds:\r\n  - url: https://a.example.org/rss\r\n  - url: https://b.example.org/rss\r\n    name: B\r\n"
    assert os.stat(real).st_mode & 0o777 == 0o640
    result = remove_feed(link, "https://a.example.org/rss")
    assert result is not None and result[0].url == "https://a.example.org/rss"
    assert real.read_bytes() == b"settings:\r\n  storage: .\r\nfeeds:\r\n  - url: https://b.example.org/rss\r\n    name: B\r\n"


@pytest.mark.parametrize(
    "text",
    [
        "settings:\n  storage: .\nfeeds:\n- url: https://a.example.org/rss\n  name: A\n",  # yaml.safe_dump's layout: the dash at the key's column
        "feeds:\n  -   url: https://a.example.org/rss\n      name: A\nsettings:\n  storage: .\n",  # feeds first, a wide offset
        "feeds:\n  -\n    url: https://a.example.org/rss\n    name: >-\n      A\n\n# the end\n",  # the dash on its own line, a block scalar
        "settings: {storage: .}\nfeeds: []  # none yet\n",
        "settings:\n  storage: .\n",  # no feeds key at all
        "",
        "feeds:\n  - url: https://a.example.org/rss",  # no line break at the end
    ],
)
def test_any_layout_takes_an_entry_and_gives_it_back(tmp_path: Path, text: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    before = [(f.url, f.name) for f in load_config(path).feeds]
    config = add_feed(path, NewFeed("https://new.example.org/rss", "New: one", "2h"))
    assert [(f.url, f.name) for f in config.feeds] == [*before, ("https://new.example.org/rss", "New: one")]
    assert config.feeds[-1].interval == 7200.0
    original = yaml.safe_load(text) or {}
    entry = {"url": "https://new.example.org/rss", "name": "New: one", "interval": "2h"}
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == {**original, "feeds": [*(original.get("feeds") or []), entry]}
    assert remove_feed(path, "https://new.example.org/rss") is not None
    back = path.read_text(encoding="utf-8")
    if "feeds:" in text and text.endswith("\n"):
        assert back == text
    assert [(f.url, f.name) for f in load_config(path).feeds] == before


def test_an_edit_that_would_not_load_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("settings:\n  storage: .\nfeeds:\n  - url: https://a.example.org/rss\n", encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"feeds.yaml: not changed: the edit would not load: .*feeds.yaml: feeds.1.url"):
        add_feed(path, NewFeed("ftp://a.example.org/rss"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds.yaml"]  # no temporary file left


def test_a_flow_style_list_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds: [{url: 'https://a.example.org/rss'}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="write `feeds:` as a block list"):
        add_feed(path, NewFeed("https://b.example.org/rss"))


def test_edits_at_the_same_time_all_land(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("# shared\nsettings:\n  storage: .\nfeeds: []\n", encoding="utf-8")
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            add_feed(path, NewFeed(f"https://site{i}.example.org/rss", f"Site {i}"))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(f.name or "" for f in load_config(path).feeds) == sorted(f"Site {i}" for i in range(8))
