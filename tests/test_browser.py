"""The digest files and the web app in a real browser (Debian's chromium, driven by Playwright), on
data polled from loopback feeds that include hostile items: every page renders without console
errors, no feed text runs as code, the Content-Security-Policy blocks an injected script, links
resolve, a phone shows no sideways scroll, and phone and desktop screenshots are kept as artifacts
($AGGREGATOR_TEST_ARTIFACTS, default tests/artifacts/browser/).

The browser reaches 127.0.0.1 and local files only: background networking is off, and every request
to another host is aborted and fails the test. Skipped without the playwright package or
/usr/bin/chromium (`.ci/run` installs both); the web-app tests skip until `aggregator serve` exists.
"""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote, urldefrag, urlsplit
from xml.sax.saxutils import escape

import pytest

from browser_helpers import (
    CHROMIUM,
    DESKTOP,
    INJECTED,
    LAUNCH_ARGS,
    PHONE,
    PWNED,
    Browser,
    Visit,
    artifacts_dir,
    forbids_scripts,
    inject,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright package (pip install -e '.[test]')")
if not CHROMIUM.exists():
    pytest.skip(f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)

import httpx  # noqa: E402

from aggregator.tools.feedserver import LoopbackServer, Request, Response  # noqa: E402
from helpers import WIDE, cli, write_config  # noqa: E402

pytestmark = pytest.mark.browser

NOW = datetime.now(timezone.utc).replace(microsecond=0)
RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
HOSTILE_TITLE = f'Hostile headline <script>window.{PWNED}=1;alert(1)</script><img src=x onerror="window.{PWNED}=2;alert(2)">'
HOSTILE_SUMMARY = (f'<p>Hostile summary <script>window.{PWNED}=3;alert(3)</script><img src=x onerror="window.{PWNED}=4;alert(4)">'
                   f'<a href="javascript:window.{PWNED}=5;alert(5)">click me</a> <b>bold</b> '
                   f'<iframe src="javascript:alert(6)"></iframe><svg onload="window.{PWNED}=7"></svg>'
                   f'<a href="http://127.0.0.1:9/evil" onclick="window.{PWNED}=8">an outside link</a></p>')
# A headline about markup, delivered escaped: the stored title is this text, which every page must show as written.
LITERAL_TITLE = f"Why <script>window.{PWNED}=10;alert(10)</script> tags in headlines & <b>bold</b> claims worry editors"
MAX_PAGES = 60  # pages the crawl opens in the browser; further same-origin links are fetched without it
PER_SHAPE = 12  # ... and at most this many of one shape (/day/N, /stories/N): a day page links the day before, forever


def para(*sentences: str) -> str:
    return " ".join(sentences)


FLOOD = para(
    "Heavy rain flooded the lower streets of Port Elwyn overnight, forcing the harbour authority to close the ferry terminal.",
    "Forty residents of the quay district were moved to the sports hall, where volunteers handed out blankets and soup.",
    "The river rose two metres in six hours, the highest level recorded since the great storm of 1987, the weather office said.",
    "Fire crews pumped water out of the hospital basement while engineers inspected the old sea wall for cracks.",
    "The mayor said the town would ask the regional government for emergency funds to repair roads and the fish market.",
)
FLOOD_REPORT = para(
    "Coast Radio's reporter on the quay saw fishing boats torn from their moorings as the storm surge hit Port Elwyn at dawn.",
    "Shop owners on Harbour Street spent the morning carrying stock upstairs, and several said their insurance would not cover it.",
    "Ferry passengers were stranded on the island overnight; the operator promised hotel rooms and a first crossing at noon.",
    "Environmental groups warned that fuel from a sunken trawler could reach the oyster beds in the bay within days.",
)
BUDGET = para(
    "The town council of Northbridge passed its budget for next year by eleven votes to four after a six-hour session.",
    "The plan raises spending on schools by eight per cent and pays for a new library wing, funded partly by a parking levy.",
    "Opposition councillors said the levy would drive shoppers to the retail park outside town and hurt small businesses.",
    "The treasurer said the town's debt would fall for the third year in a row despite the new spending on schools.",
)
BUDGET_REPORT = para(
    "Northbridge councillors approved next year's spending plan late on Tuesday, with the parking levy the most disputed item.",
    "Parents' groups welcomed more money for schools, but traders gathered outside the town hall to protest against the levy.",
    "The vote followed months of consultation in which more than two thousand residents sent comments to the council.",
    "A final reading is planned for next month, when the levy's rate for disabled drivers will be decided.",
)
CHESS = para(
    "A twelve-year-old from Lakeside became the youngest national chess champion in the country's history on Sunday.",
    "She won the final game against a grandmaster three times her age in forty moves, sealing the title with a round to spare.",
    "Her coach said she trains four hours a day after school and studies endgames on the bus.",
)
FRENCH = para(
    "La grève des dockers de Marseille entre dans sa deuxième semaine, et les porte-conteneurs s'accumulent au large.",
    "Les syndicats réclament une hausse des salaires de sept pour cent ; la direction du port propose quatre pour cent.",
    "Les exportateurs de fruits craignent de perdre leur récolte si les navires ne sont pas déchargés d'ici vendredi.",
)
LONG_TOKEN = "https://harbour.example.org/notices/2026/" + "the-port-authority-publishes-its-complete-tide-table-" * 3 + "revision"
TIDES = para(
    "The port authority published next season's tide tables and dredging schedule, with the main channel closed for two weeks in May.",
    "Pilots will guide larger ships through the northern passage while the dredgers work, the notice said.",
    "Harbour dues for small craft stay the same, but moorings on the outer pontoon will cost a fifth more.",
)
HOSTILE_TEXT = para(
    "The hostile item's body is plain prose about a new bus timetable in Westhaven, starting on the first Monday of the month.",
    "Buses on the coastal line will run every ten minutes at peak hours, and the night service will be extended to two o'clock.",
    "The transport board said fares stay the same until the autumn review.",
)
LITERAL_TEXT = para(
    "Editors at the Westhaven Courier discussed how headlines quoting computer code are shown by news readers and aggregators.",
    "A headline that names a tag should appear exactly as written, the editors said, and never change the page it appears on.",
)
JS_LINK_TEXT = para(
    "An item whose link is a javascript: address describes the reopening of the Westhaven swimming baths after repairs.",
    "The baths closed last winter when part of the roof fell in; the pool now has a new roof, changing rooms and a sauna.",
)

# feed path -> (name, format, [(slug, title, text, summary html or None, hours ago, link override)])
FEEDS: dict[str, tuple[str, str, list[tuple[str, str, str, str | None, float, str | None]]]] = {
    "/gazette.xml": ("Harbour Gazette", "rss", [
        ("flood", "Storm floods Port Elwyn, ferry terminal closed", FLOOD, None, 5, None),
        ("budget", "Northbridge passes budget with parking levy", BUDGET, None, 4, None),
        ("tides", f"Tide tables and dredging notice {LONG_TOKEN}", TIDES, None, 3, None),
    ]),
    "/wire.xml": ("Wire Service", "atom", [
        ("flood-copy", "Port Elwyn under water as storm hits the coast", FLOOD, None, 4.5, None),
        ("budget-report", "Northbridge council approves spending plan", BUDGET_REPORT, None, 3.5, None),
        ("chess", "Girl, 12, youngest chess champion ever", CHESS, "<p>A <em>twelve-year-old</em> wins the national title.</p>", 2, None),
    ]),
    "/radio.xml": ("Coast Radio", "rss", [
        ("flood-report", "Boats torn from moorings in Port Elwyn storm", FLOOD_REPORT, None, 4, None),
        ("hostile", HOSTILE_TITLE, HOSTILE_TEXT, HOSTILE_SUMMARY + f"<p>{HOSTILE_TEXT}</p>", 2.5, None),
        ("literal", html.escape(LITERAL_TITLE), LITERAL_TEXT, None, 2.2, None),
        ("js-link", "Westhaven baths reopen (javascript: link)", JS_LINK_TEXT, None, 1.5, f"javascript:window.{PWNED}=9;alert(9)"),
        ("greve", "Marseille : la grève des dockers se durcit", FRENCH, None, 1, None),
    ]),
}


def rss(base: str, name: str, items: list[tuple[str, str, str, str | None, float, str | None]]) -> bytes:
    body = "".join(
        f"<item><title>{escape(title)}</title><link>{escape(link or f'{base}/a/{slug}')}</link><guid isPermaLink=\"false\">{slug}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=hours), usegmt=True)}</pubDate>"
        f"<description>{escape(summary or text)}</description></item>"
        for slug, title, text, summary, hours, link in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(name)}</title>'
            f"<link>{base}/</link>{body}</channel></rss>").encode()


def atom(base: str, name: str, items: list[tuple[str, str, str, str | None, float, str | None]]) -> bytes:
    def stamp(hours: float) -> str:
        return (NOW - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    entries = "".join(
        f"<entry><title>{escape(title)}</title><link href=\"{escape(link or f'{base}/a/{slug}')}\"/><id>urn:wire:{slug}</id>"
        f"<updated>{stamp(hours)}</updated><published>{stamp(hours)}</published>"
        + (f'<summary type="html">{escape(summary)}</summary>' if summary else "")
        + f'<content type="text">{escape(text)}</content></entry>'
        for slug, title, text, summary, hours, link in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{escape(name)}</title>'
            f"<id>urn:wire</id><updated>{stamp(0)}</updated>{entries}</feed>").encode()


class Site:
    """The outlets' feeds and article pages on 127.0.0.1."""

    def __init__(self) -> None:
        self.server = LoopbackServer(self)
        self.pages = {f"/a/{slug}": title for _, _, items in FEEDS.values() for slug, title, *_ in items}

    def __call__(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path in FEEDS:
            name, kind, items = FEEDS[path]
            body = (atom if kind == "atom" else rss)(self.server.base_url, name, items)
            return Response(200, body, {"Content-Type": ATOM if kind == "atom" else RSS})
        if path in self.pages:
            return Response(200, f"<!DOCTYPE html><title>{escape(self.pages[path])}</title><p>Article.</p>".encode(),
                            {"Content-Type": "text/html; charset=utf-8"})
        return Response(404, b"not found", {"Content-Type": "text/plain"})


@pytest.fixture(scope="module")
def site() -> Iterator[LoopbackServer]:
    handler = Site()
    with handler.server as server:
        yield server


@pytest.fixture(scope="module")
def polled(site: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config and a database filled by one real polling round over the loopback feeds."""
    directory = tmp_path_factory.mktemp("browser-data")
    config = write_config(directory, [{"url": site.url(path), "name": name} for path, (name, _, _) in FEEDS.items()],
                          timezone="UTC", extract={"fetch_pages": False})
    result = cli("poll", "--all", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return config


@pytest.fixture(scope="module")
def digests(polled: Path) -> list[Path]:
    """The HTML digest files ``aggregator digest`` writes for every day the items fall on."""
    days = sorted({(NOW - timedelta(hours=hours)).date() for _, _, items in FEEDS.values() for *_, hours, _ in items} | {NOW.date()})
    for day in days:
        result = cli("digest", "--date", day.isoformat(), "--config", str(polled))
        assert result.returncode == 0, result.stderr
    files = sorted((polled.parent / "digests").glob("*.html"))
    assert {f"{day.isoformat()}.html" for day in days} <= {f.name for f in files}
    return files


@pytest.fixture(scope="module")
def browser(polled: Path) -> Iterator[Browser]:  # after the data: Playwright's sync API keeps an event loop in this thread
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        wrapped = Browser(chromium)
        try:
            yield wrapped
        finally:
            chromium.close()
        assert not wrapped.outside, f"the browser tried to reach other hosts: {wrapped.outside}"


@pytest.fixture(scope="module")
def artifacts() -> Path:
    return artifacts_dir()


def checked_links(visit: Visit, site: LoopbackServer, client: httpx.Client, checked: dict[str, int]) -> list[str]:
    """Problems with the page's links: a local file that does not exist, an anchor with no target on its
    page, a loopback article page that does not answer 200. Other hosts' links are not followed."""
    problems = []
    for link in visit.info["links"]:
        href, fragment = urldefrag(link["href"])
        parts = urlsplit(href)
        if href == urldefrag(visit.url)[0] and fragment:
            if fragment not in visit.info["ids"] and fragment not in visit.info["names"]:
                problems.append(f"{visit.url}: link {link['raw']!r} has no target on the page")
        elif parts.scheme == "file":
            if not Path(parts.path).exists():
                problems.append(f"{visit.url}: link {link['raw']!r} to a missing file {parts.path}")
        elif href.startswith(site.base_url):
            if href not in checked:
                checked[href] = client.get(href).status_code
            if checked[href] != 200:
                problems.append(f"{visit.url}: link {link['raw']!r} answered HTTP {checked[href]}")
    return problems


# -- the digest files ----------------------------------------------------------------------------------


def test_digest_files_render_cleanly_on_phone_and_desktop(digests, browser: Browser, site, artifacts: Path) -> None:
    problems: list[str] = []
    checked: dict[str, int] = {}
    seen_text = ""
    with httpx.Client(timeout=10) as client:
        for device_name, device in (("phone", PHONE), ("desktop", DESKTOP)):
            with browser.context(device) as context:
                for path in digests:
                    visit = browser.visit(context, path.as_uri(), screenshot=artifacts / f"digest-{path.stem}-{device_name}.png")
                    problems += [f"{path.name} ({device_name}): {p}" for p in visit.problems()]
                    if not forbids_scripts(visit.info["metaCsp"]):
                        problems.append(f"{path.name}: its Content-Security-Policy does not forbid scripts: {visit.info['metaCsp']!r}")
                    if device is PHONE and (why := visit.phone_layout(PHONE["viewport"]["width"])):
                        problems.append(f"{path.name} (phone): {why}")
                    problems += checked_links(visit, site, client, checked)
                    seen_text += visit.info["text"]
    assert not problems, "\n".join(dict.fromkeys(problems))
    # Not vacuous: the stories, the hostile one included, are on the pages (its markup shown as text or dropped, never run).
    for words in ("Storm floods Port Elwyn", "Northbridge", "Hostile headline", "Marseille", LITERAL_TITLE):
        assert words in seen_text, f"{words!r} is not shown on any digest page"
    assert checked and all(status == 200 for status in checked.values())


def wait_for_violation(page, result: Visit) -> None:
    """Wait (up to 5 s) for the page to report a script blocked by its CSP, then record what it reported."""
    try:
        page.wait_for_function("window.__cspViolations.some(v => v.startsWith('script-src'))", timeout=5_000)
    except sync_api.TimeoutError:
        pass
    result.info.update(page.evaluate(f"({{injected: window.{INJECTED} ?? null, violations: window.__cspViolations}})"))


def add_script(page, result: Visit) -> None:
    """Add an inline <script> to the loaded page through the DOM (Playwright's add_script_tag), then
    record whether it ran and which CSP violations the page reported (the event comes a task later)."""
    try:
        page.add_script_tag(content=f"window.{INJECTED} = 'script tag'")
    except sync_api.Error:
        pass  # refused: fine, what counts is whether it ran
    try:
        page.wait_for_function("window.__cspViolations.some(v => v.startsWith('script-src'))", timeout=5_000)
    except sync_api.TimeoutError:
        pass
    result.info["after_tag"] = page.evaluate(f"[window.{INJECTED} ?? null, window.__cspViolations]")


def test_a_script_injected_into_a_digest_is_blocked_by_its_policy(digests, browser: Browser, tmp_path: Path) -> None:
    """A copy of each digest with a script, an onerror and an onload in its body (as if feed text had gone
    out unescaped), and a script added to the original page through the DOM: the CSP stops every one."""
    problems: list[str] = []
    with browser.context(DESKTOP) as context:
        for path in digests:
            copy = tmp_path / path.name
            copy.write_text(inject(path.read_text(encoding="utf-8")), encoding="utf-8")
            visit = browser.visit(context, copy.as_uri(), then=wait_for_violation)
            if visit.info["injected"] is not None:
                problems.append(f"{path.name}: the injected {visit.info['injected']} ran")
            if not any("script-src" in v for v in visit.info["violations"]):
                problems.append(f"{path.name}: no CSP violation reported for the injected script: {visit.info['violations']}")
            if not any("Content Security Policy" in m for m in visit.console_errors):
                problems.append(f"{path.name}: the console does not show the CSP refusal: {visit.console_all}")

            visit = browser.visit(context, path.as_uri(), then=add_script)
            ran, violations = visit.info["after_tag"]
            if ran is not None or not any("script-src" in v for v in violations):
                problems.append(f"{path.name}: a script added through the DOM was not blocked (ran: {ran}, violations: {violations})")
    assert not problems, "\n".join(dict.fromkeys(problems))


# -- the web app ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(polled: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``aggregator serve`` on the polled database, as a separate process on a free loopback port."""
    command = [sys.executable, "-m", "aggregator"]
    help_ = subprocess.run([*command, "serve", "--help"], capture_output=True, text=True, timeout=60, env={**os.environ, **WIDE})
    if help_.returncode != 0:
        pytest.skip("aggregator serve not available")
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as out:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}  # no token or config from the caller's shell
        process = subprocess.Popen([*command, "serve", "--config", str(polled), "--host", "127.0.0.1", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env={**env, **WIDE})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"aggregator serve exited ({process.returncode}): {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"/healthz never answered 200 within 30 s: {log.read_text()[-2000:]}"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def expected_type(path: str) -> str | None:
    """The content type a non-page URL must answer with, by its path."""
    if path.startswith("/api/") or path.endswith(".json"):
        return "json"
    if path.endswith((".atom", ".xml", ".rss")):
        return "xml"
    return None


def shape(url: str) -> str:
    """A URL's template: its path with every number as N, and its query's parameter names."""
    parts = urlsplit(url)
    return re.sub(r"\d+", "N", parts.path) + "?" + "&".join(sorted(p.split("=", 1)[0] for p in parts.query.split("&") if p))


def test_every_served_page_renders_cleanly(served: str, browser: Browser, site, artifacts: Path) -> None:
    """A crawl from / (plus the pages the app promises) following same-origin links: each HTML page
    answers 200 with a CSP that forbids scripts, shows no console error, runs no feed text, fits a
    phone's width; JSON and feeds answer 200 with their type; every link resolves. Phone and desktop
    screenshots of the home, day, story, feeds and search pages (taken before any assertion)."""
    today = NOW.date().isoformat()
    shots = {served + "/": "home", f"{served}/day/{today}": "day", served + "/feeds": "feeds", served + "/search?q=Port+Elwyn": "search"}
    seeds = [*shots, f"/search?q={quote(HOSTILE_TITLE)}", "/feeds/stories.atom", "/feeds/stories.json", "/healthz"]
    queue = [url if url.startswith(served) else served + url for url in seeds]
    seen = set(queue)
    problems: list[str] = []
    pages: list[str] = []
    checked: dict[str, int] = {}
    texts = ""
    # A new connection a request: the server may close an idle kept-alive one while the browser works.
    with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client, browser.context(PHONE) as phone:
        while queue:
            url = queue.pop(0)
            path = urlsplit(url).path
            try:
                answer = client.get(url)
            except httpx.HTTPError as exc:
                problems.append(f"{url}: {exc!r}")
                continue
            kind = answer.headers.get("content-type", "")
            if answer.status_code != 200:
                problems.append(f"{url}: HTTP {answer.status_code}")
                continue
            if "text/html" not in kind:
                want = expected_type(path)
                if path == "/healthz":
                    want = "json" if "json" in kind else "text/plain"
                if want is None or want not in kind:
                    problems.append(f"{url}: content type {kind!r}, expected {want or 'text/html'}")
                continue
            if len(pages) >= MAX_PAGES or sum(shape(p) == shape(url) for p in pages) >= PER_SHAPE:
                continue  # answered 200; not opened in the browser
            pages.append(url)
            if path.startswith("/stories/") and "story" not in shots.values():
                shots[url] = "story"
            visit = browser.visit(phone, url, screenshot=artifacts / f"serve-{shots[url]}-phone.png" if url in shots else None)
            problems += [f"{url} (phone): {p}" for p in visit.problems()]
            if visit.status != 200:
                problems.append(f"{url}: the browser got HTTP {visit.status}")
            if not forbids_scripts(visit.headers.get("content-security-policy")):
                problems.append(f"{url}: Content-Security-Policy header missing or allowing scripts: "
                                f"{visit.headers.get('content-security-policy')!r}")
            if why := visit.phone_layout(PHONE["viewport"]["width"]):
                problems.append(f"{url} (phone): {why}")
            problems += checked_links(visit, site, client, checked)
            texts += visit.info["text"]
            for link in visit.info["links"] + [a for a in visit.info["alternates"] if "stylesheet" not in a["rel"]]:
                target = urldefrag(link["href"])[0]
                if target.startswith(served + "/") and target not in seen:
                    seen.add(target)
                    queue.append(target)
    with browser.context(DESKTOP) as desktop:
        for url, name in shots.items():
            visit = browser.visit(desktop, url, screenshot=artifacts / f"serve-{name}-desktop.png")
            problems += [f"{url} (desktop): {p}" for p in visit.problems()]
    assert not problems, "\n".join(dict.fromkeys(problems))
    assert "story" in shots.values(), f"no /stories/ page linked from any of {pages}"
    for words in ("Storm floods Port Elwyn", "Hostile headline", LITERAL_TITLE):
        assert words in texts, f"{words!r} is not shown on any page"


def test_a_script_added_to_a_served_page_is_blocked(served: str, browser: Browser) -> None:
    """Playwright's evaluate is exempt from the page's CSP, but a <script> it adds to the DOM is not."""
    problems = []
    with browser.context(DESKTOP) as context:
        for path in ("/", "/feeds", "/search?q=Port+Elwyn"):
            visit = browser.visit(context, served + path, then=add_script)
            ran, violations = visit.info["after_tag"]
            if ran is not None or not any("script-src" in v for v in violations):
                problems.append(f"{path}: a script added through the DOM was not blocked (ran: {ran}, violations: {violations})")
    assert not problems, "\n".join(dict.fromkeys(problems))

