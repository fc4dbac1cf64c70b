"""The web app and JSON API (``aggregator serve``, ``run --serve``) on databases made by real polls
of feeds on 127.0.0.1: the real command as a process where the process is the point (printing
where it listens, serving, stopping on SIGTERM), Starlette's TestClient for the rest. Nothing here
binds anything but loopback."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest

from aggregator.config import load_config
from aggregator.factory import open_library
from aggregator.models import SearchHit, Story
from aggregator.shapes import feed_dict, search_dict, story_dict
from aggregator.tools.feedserver import LoopbackServer, Request, Response
from aggregator.web import make_app
from aggregator.web.app import CSP, local_next, marked, visit
from helpers import aggregator, cli, write_config

with warnings.catch_warnings():  # (Starlette 1.x would have its test client use httpx2; httpx is what we have)
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NOW = datetime.now(timezone.utc).replace(microsecond=0)
HOSTILE = "<script>alert(1)</script> Ferry <b>strike</b> halts crossings"
FIRE = "Warehouse fire at Port Elwyn harbour forces evacuation of 200 homes"
FIRE_TEXT = (
    "PORT ELWYN – A fire that broke out overnight in a grain warehouse at Port Elwyn harbour forced the evacuation of "
    "about 200 homes, the fire service said on Tuesday. Crews from three towns fought the blaze for nine hours before "
    "bringing it under control. No injuries were reported, but the harbour master said shipping would be suspended "
    "until the damaged quay had been inspected by engineers. Residents were allowed back in the afternoon. The cause "
    "of the fire is under investigation; the warehouse owner said the building had passed a safety inspection in May."
)
FERRY_TEXT = ("Ferry crews on the northern crossings walked out at dawn over a pay offer, stranding hundreds of "
              "travellers at the terminals. The union said the stoppage would last 48 hours. ") * 3
OUTLETS = {"/wire.xml": "Global Wire", "/herald.xml": "The Herald <i>", "/courier.xml": "Lakeside Courier"}


def rss(items: list[tuple[str, str, str, float, str]]) -> bytes:
    """RSS 2.0 of (guid, title, link, hours ago, text); titles escaped twice, so that markup in them
    reaches the database as text (what a feed says when its headline really reads "<b>")."""
    body = "".join(
        f"<item><title>{escape(escape(title))}</title><guid>{escape(guid)}</guid><link>{escape(link)}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=ago), usegmt=True)}</pubDate><description>{escape(text)}</description></item>"
        for guid, title, link, ago, text in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>feed</title>{body}</channel></rss>'.encode()


class Feeds:
    """Three outlets' feeds on 127.0.0.1: the fire story from the wire and the Herald (a copy), a
    hostile headline whose link is ``javascript:``; ``courier`` adds the Courier's copy of the fire."""

    def __init__(self) -> None:
        self.courier = False
        self.server = LoopbackServer(self)

    def __call__(self, request: Request) -> Response:
        base = self.server.base_url
        items = {
            "/wire.xml": [("w1", FIRE, f"{base}/wire/fire.html", 3, FIRE_TEXT),
                          ("w2", HOSTILE, "javascript:alert(1)", 2, FERRY_TEXT)],
            "/herald.xml": [("h1", "Port Elwyn harbour blaze: 200 homes evacuated", f"{base}/herald/fire.html", 2.5, FIRE_TEXT)],
            "/courier.xml": [("c1", "Harbour fire: Port Elwyn families return home", f"{base}/courier/fire.html", 1, FIRE_TEXT)]
            if self.courier else [],
        }.get(request.path)
        if items is None:
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        return Response(200, rss(items), {"Content-Type": "application/rss+xml"})


@pytest.fixture
def feeds() -> Iterator[Feeds]:
    site = Feeds()
    with site.server:
        yield site


def configure(directory: Path, site: Feeds) -> Path:
    return write_config(directory, [{"url": site.server.url(path), "name": name, "interval": "1m"} for path, name in OUTLETS.items()],
                        schedule={"min_interval": "1m", "jitter": 0})


def poll(config: Path) -> None:
    result = cli("poll", "--all", "--config", str(config))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config whose database a real poll filled (the feed server is gone afterwards)."""
    site = Feeds()
    with site.server:
        config = configure(tmp_path_factory.mktemp("polled"), site)
        poll(config)
    return config


def client(config: Path, **options: object) -> TestClient:
    options.setdefault("clock", lambda: datetime.now(timezone.utc))
    return TestClient(make_app(load_config(config), **options), base_url="http://127.0.0.1:8080")  # type: ignore[arg-type]


def story_titled(config: Path, title: str) -> Story:
    lib = open_library(load_config(config))
    try:
        return next(s for s in lib.stories_between(NOW - timedelta(days=1), NOW + timedelta(days=1)) if s.title == title)
    finally:
        lib.close()


# -- the real command ---------------------------------------------------------------------------


def start(*args: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``aggregator ARGS`` as a process; the URL it says it serves (``--port 0``: a free port)."""
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "aggregator", *args], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"serving (http://127\.0\.0\.1:\d+)/", log.read_text())
        if found:
            return proc, found[1]
        assert proc.poll() is None, f"exited {proc.returncode}: {log.read_text()}"
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"never said where it serves: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=40)


def test_serve_shows_the_stories_and_the_same_json_as_the_cli(polled: Path, tmp_path: Path) -> None:
    proc, url = start("serve", "--config", str(polled), "--port", "0", log=tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            home = http.get("/")
            assert home.status_code == 200
            assert home.headers["content-security-policy"] == CSP and "script-src" not in CSP and "'unsafe-inline'" not in CSP
            assert home.headers["x-content-type-options"] == "nosniff" and home.headers["referrer-policy"] == "no-referrer"
            page = home.text
            assert FIRE in page and "Global Wire" in page and "The Herald &lt;i&gt;" in page  # the story and its outlets
            assert "&lt;script&gt;alert(1)&lt;/script&gt; Ferry &lt;b&gt;strike&lt;/b&gt;" in page and "<script" not in page
            assert 'name="viewport"' in page and "/static/style.css" in page and "style=" not in page
            assert http.get("/static/style.css").text.count("prefers-color-scheme: dark") == 1

            # The API says what `clusters --json` and `story --json` say, word for word.
            listed = cli("clusters", "--json", "--config", str(polled))
            assert http.get("/api/stories").json() == httpx.Response(200, content=listed.stdout).json()
            fire = story_titled(polled, FIRE)
            shown = cli("story", str(fire.id), "--json", "--config", str(polled))
            assert http.get(f"/api/stories/{fire.id}").json() == httpx.Response(200, content=shown.stdout).json()
            assert http.get("/api/feeds").json() == httpx.Response(200, content=cli("feeds", "--json", "--config", str(polled)).stdout).json()

            story_page = http.get(f"/stories/{fire.id}").text
            assert FIRE_TEXT[:80] in story_page and "copy" in story_page and "/herald/fire.html" in story_page
            ferry = http.get(f"/stories/{story_titled(polled, HOSTILE).id}").text
            assert "javascript:" not in ferry and "&lt;b&gt;strike&lt;/b&gt;" in ferry  # a javascript: link is no link

            health = http.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["stories_today"] >= 1
            assert datetime.fromisoformat(health.json()["last_poll_at"]) >= NOW - timedelta(minutes=5)

            assert http.get("/stories/999999").status_code == 404 and "no story with id 999999" in http.get("/stories/999999").text
            assert http.get("/api/stories/999999").json() == {"error": "no story with id 999999"}
            bad_day = http.get("/day/2026-02-30")
            assert bad_day.status_code == 400 and "expected a date YYYY-MM-DD" in bad_day.text
            assert http.get("/api/stories", params={"since": "soon"}).status_code == 400
            assert http.get("/api/stories", params={"date": "2026-11-26", "since": "6h"}).status_code == 400
            assert http.get("/", headers={"Host": "rebound.example:80"}).status_code == 421  # DNS rebinding
    finally:
        assert stop(proc) == 0
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_run_serve_serves_while_polling_and_stops_on_sigterm(feeds: Feeds, tmp_path: Path) -> None:
    config = configure(tmp_path, feeds)
    proc, url = start("-v", "run", "--serve", "--port", "0", "--config", str(config), log=tmp_path / "run.log")
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 60
            while not any(s["title"] == FIRE for s in http.get("/api/stories").json()):  # the daemon's first round
                assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
                time.sleep(0.2)
            assert FIRE in http.get("/").text
            assert http.get("/healthz").json()["last_poll_at"] is not None
    finally:
        assert stop(proc) == 0
    log = (tmp_path / "run.log").read_text()
    assert "daemon stopped" in log and "Traceback" not in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_a_public_address_needs_a_token_before_anything_starts(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed.xml", "name": "Gazette"}])
    for args in (["serve"], ["run", "--serve"]):
        refused = cli(*args, "--host", "0.0.0.0", "--port", "0", "--config", str(config), env={"AGGREGATOR_TOKEN": ""})
        assert refused.returncode == 2 and "not a loopback address" in refused.stderr and "--token" in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1
    short = cli("serve", "--token", "secret", "--port", "0", "--config", str(config))
    assert short.returncode == 2 and "at least 16 characters" in short.stderr
    assert cli("run", "--port", "9000", "--config", str(config)).returncode == 2  # --port without --serve
    assert not (tmp_path / "aggregator.db").exists()


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = aggregator("serve", "--port", str(taken.getsockname()[1]), "--config", str(config), timeout=30)
    assert busy.returncode == 1 and busy.stderr.startswith("error: cannot listen on 127.0.0.1:") and "in use" in busy.stderr, busy.stderr


# -- the app in this process ------------------------------------------------------------------


def test_marking_read_hides_a_story_until_news_bring_it_back_as_updated(feeds: Feeds, tmp_path: Path) -> None:
    config = configure(tmp_path, feeds)
    poll(config)
    fire = story_titled(config, FIRE)
    with client(config) as web:
        assert f'/stories/{fire.id}"' in web.get("/").text
        marked_read = web.post(f"/stories/{fire.id}/read", data={"next": "/?from=form"}, follow_redirects=False)
        assert marked_read.status_code == 303 and marked_read.headers["location"] == "/?from=form"
        assert web.get(f"/api/stories/{fire.id}").json()["status"] == "read"
        assert f'/stories/{fire.id}"' not in web.get("/").text  # the front page shows what is unread or updated
        assert "read" in web.get(f"/day/{fire.first_reported_at.date().isoformat()}").text

        feeds.courier = True  # a third outlet reports it
        poll(config)
        now = web.get(f"/api/stories/{fire.id}").json()
        assert now["status"] == "updated" and now["new_articles"] == 1 and now["source_count"] == 3
        front = web.get("/").text
        assert "updated" in front and "New since you read it" in front and "Harbour fire: Port Elwyn families return home" in front
        assert "Lakeside Courier" in web.get(f"/stories/{fire.id}").text

        # The API: the story as it is after the change; a bulk form marks many at once.
        unread = web.post(f"/api/stories/{fire.id}/unread")
        assert unread.status_code == 200 and unread.json() == story_dict(story_titled(config, FIRE))
        assert unread.json()["status"] == "unread"
        ids = [s["id"] for s in web.get("/api/stories", params={"since": "1d"}).json()]
        bulk = web.post("/stories/read", data={"id": [str(i) for i in ids], "next": "/"}, follow_redirects=False)
        assert bulk.status_code == 303
        assert web.get("/api/stories", params={"since": "1d", "status": "unread,updated"}).json() == []
        assert "Nothing unread" in web.get("/").text
        assert web.post("/api/stories/unread", json={"ids": ids}).json() == {"marked": len(ids)}
        assert web.post("/api/stories/999999/read").status_code == 404
        assert web.post("/api/stories/read", content=b"[1]").status_code == 400

        # Another site's page cannot change anything (a form it posts here, or a script's fetch).
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
            refused = web.post(f"/stories/{fire.id}/read", headers=headers, follow_redirects=False)
            assert refused.status_code == 403 and "another site" in refused.text
        assert web.get(f"/api/stories/{fire.id}").json()["status"] == "unread"
        assert web.post(f"/stories/{fire.id}/read", headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"},
                        follow_redirects=False).status_code == 303


def test_the_story_page_says_whose_article_a_copy_copies_as_the_cli_does(polled: Path) -> None:
    fire = story_titled(polled, FIRE)
    shown = json.loads(cli("story", str(fire.id), "--json", "--config", str(polled)).stdout)
    copies = [v for v in shown["variants"] if v["kind"] == "copy"]
    assert copies and all(v["copy_of"] == "Global Wire" for v in copies)  # the Herald copies the wire's report
    with client(polled) as web:
        page = web.get(f"/stories/{fire.id}").text
    kinds = dict(re.findall(r'<tr[^>]*>\s*<td><bdi>([^<]*)</bdi>.*?<td data-label="kind">([^<]*)</td>', page, re.DOTALL))
    assert kinds["The Herald &lt;i&gt;"] == "copy of Global Wire" == f"copy of {copies[0]['copy_of']}"
    assert kinds["Global Wire"] == "canonical"


def test_a_story_merged_away_points_to_the_story_it_went_into(feeds: Feeds, tmp_path: Path) -> None:
    config = configure(tmp_path, feeds)
    poll(config)
    kept, gone = story_titled(config, FIRE).id, story_titled(config, HOSTILE).id
    merged = cli("story", "merge", str(kept), str(gone), "--config", str(config))
    assert merged.returncode == 0, merged.stderr
    shown = cli("story", str(gone), "--json", "--config", str(config))
    with client(config) as web:
        page = web.get(f"/stories/{gone}", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == f"/stories/{kept}"
        assert FIRE in web.get(f"/stories/{gone}").text  # followed: the story kept
        api = web.get(f"/api/stories/{gone}")
        assert api.status_code == 404
        assert api.json() == {"error": f"story {gone} was merged into story {kept}", "merged_into": kept}
        assert shown.returncode == 1 and json.loads(shown.stdout) == api.json()  # the CLI's --json says the same
        assert web.get("/api/stories/999999").json() == {"error": "no story with id 999999"}  # never merged: as before

        assert cli("corrections", "undo", "1", "--config", str(config)).returncode == 0
        assert web.get(f"/stories/{gone}", follow_redirects=False).status_code == 200  # an undone merge sends nowhere
        assert web.get(f"/api/stories/{gone}").json()["id"] == gone


def test_a_token_guards_every_write(polled: Path) -> None:
    token = "t0ken-of-at-least-16-chars"
    fire = story_titled(polled, FIRE)
    with client(polled, token=token, host="192.0.2.1") as web:  # (no socket: the app as it is served off loopback)
        refused = web.post(f"/api/stories/{fire.id}/read")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert web.post(f"/api/stories/{fire.id}/read", headers={"Authorization": "Bearer wrong-token-of-16-chars"}).status_code == 401
        assert web.post(f"/stories/{fire.id}/read", follow_redirects=False).status_code == 403
        assert "Mark read" not in web.get(f"/stories/{fire.id}").text and "Sign in" in web.get("/").text
        assert web.get("/", headers={"Host": "news.example.org"}).status_code == 200  # off loopback, any name

        allowed = web.post(f"/api/stories/{fire.id}/read", headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200 and allowed.json()["status"] == "read"

        assert web.post("/login", data={"token": "nope", "next": "/feeds"}, follow_redirects=False).status_code == 403
        signed = web.post("/login", data={"token": token, "next": "/feeds"}, follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/feeds"
        assert "httponly" in signed.headers["set-cookie"].lower() and "samesite=strict" in signed.headers["set-cookie"].lower()
        assert web.post(f"/stories/{fire.id}/unread", follow_redirects=False).status_code == 303  # the cookie is the token
        assert "Mark read" in web.get(f"/stories/{fire.id}").text
        web.post("/logout")
        assert web.post(f"/stories/{fire.id}/read", follow_redirects=False).status_code == 403


def test_search_highlights_matches_and_answers_with_the_cli_shape(polled: Path) -> None:
    with client(polled) as web:
        page = web.get("/search", params={"q": "ferry crossings"}).text
        assert "<mark>" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
        lib = open_library(load_config(polled))
        try:
            expected = [search_dict(r) for r in lib.search("harbour", 50)]
        finally:
            lib.close()
        assert expected and web.get("/api/search", params={"q": "harbour"}).json() == expected
        assert web.get("/api/search", params={"q": ""}).status_code == 400
        assert web.get("/api/search", params={"q": "x" * 501}).status_code == 400
        assert web.get("/search").status_code == 200  # the form alone


@pytest.mark.sqlite_only  # a SQLite file not there, then not a database
def test_an_unreadable_database_is_a_503_with_the_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed.xml", "name": "Gazette"}])
    with client(config) as web:
        health = web.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "unavailable" and "no database here yet" in health.json()["reason"]
        page = web.get("/")
        assert page.status_code == 503 and "the database cannot be read" in page.text and page.headers["content-security-policy"] == CSP
        assert web.get("/api/stories").status_code == 503
    assert not (tmp_path / "aggregator.db").exists()  # a reader makes no database

    (tmp_path / "aggregator.db").write_bytes(b"this is not a database" * 100)
    with client(config) as web:
        assert web.get("/healthz").status_code == 503 and web.get("/feeds").status_code == 503


def test_story_feeds_are_served(polled: Path) -> None:
    with client(polled) as web:
        atom = web.get("/feeds/stories.atom")
        assert atom.status_code == 200 and atom.headers["content-type"].startswith("application/atom+xml")
        assert "Port Elwyn" in atom.text and "http://127.0.0.1:8080/stories/" in atom.text
        assert web.get("/feeds/stories.json").json()["items"]


# -- the small pieces ---------------------------------------------------------------------------


def test_search_marks_are_escaped_and_never_trusted() -> None:
    hit = SearchHit(1, 1, "t", "s", None, NOW, snippet="<b>fire</b> & fire", marks=((14, 99), (3, 7), (5, 8), (50, 60)))
    assert str(marked(hit)) == "&lt;b&gt;<mark>fire</mark><mark>&lt;</mark>/b&gt; &amp; <mark>fire</mark>"  # overlaps clipped, order sorted


def test_a_visit_ends_after_half_an_hour_away() -> None:
    t0 = NOW
    since, cookie = visit(None, t0)
    assert since is None  # a first visit: nothing is "new since"
    since, cookie = visit(cookie, t0 + timedelta(minutes=10))
    assert since is None
    since, cookie = visit(cookie, t0 + timedelta(hours=2))  # a new visit: news since the last look
    assert since == t0 + timedelta(minutes=10)
    assert visit(cookie, t0 + timedelta(hours=2, minutes=5))[0] == since  # the same visit keeps it
    assert visit("garbage:x", t0) == (None, f":{int(t0.timestamp())}")


def test_forms_send_the_browser_back_to_this_site_only() -> None:
    assert local_next("/day/2026-11-30?x=1", "/") == "/day/2026-11-30?x=1"
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "/\nSet-Cookie: x", None):
        assert local_next(hostile, "/stories/1") == "/stories/1"


def test_the_front_page_marks_what_came_since_the_last_visit(polled: Path) -> None:
    later: Callable[[], datetime] = lambda: datetime.now(timezone.utc) + timedelta(hours=1)  # noqa: E731
    with client(polled) as web:
        web.cookies.set("aggregator_visit", f":{int((NOW - timedelta(days=2)).timestamp())}")
        page = web.get("/").text
        assert "new since your last visit" in page and "with news since your last visit" in page
    with TestClient(make_app(load_config(polled), clock=later), base_url="http://127.0.0.1") as web:
        web.cookies.set("aggregator_visit", f":{int(datetime.now(timezone.utc).timestamp()) + 60}")
        assert "new since your last visit" not in web.get("/").text


def test_feed_shapes_are_the_clis(polled: Path) -> None:
    lib = open_library(load_config(polled))
    try:
        expected = [feed_dict(f, lib.config.settings.schedule) for f in lib.feeds()]
    finally:
        lib.close()
    with client(polled) as web:
        assert web.get("/api/feeds").json() == expected
        page = web.get("/feeds").text
        assert "The Herald &lt;i&gt;" in page and "ok" in page
