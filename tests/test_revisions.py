"""Revisions and timelines, on real feeds polled from 127.0.0.1: an entry its feed edits under the
same guid is one article with its earlier versions kept, the story's timeline says what changed
(arrivals, revisions, figures, a new canonical and why), and `story --json` carries it all."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from pathlib import Path

from aggregator.tools.feedserver import Response
from helpers import cli, count, write_config
from test_reading import FERRY, NOW, poll, rss, serve

STRIKE = ("A government missile strike killed at least 12 people in a village in Idlib province early on Tuesday, the Syrian "
          "Observatory for Human Rights said, in one of the deadliest attacks on the rebel-held region this year. Rescuers pulled "
          "bodies from the rubble of two houses, and the monitor said children were among the dead.")
UPDATED = ("A government missile strike killed at least 15 people in a village in Idlib province early on Tuesday, the Syrian "
           "Observatory for Human Rights said, in one of the deadliest attacks on the rebel-held region this year. Rescuers pulled "
           "bodies from the debris of two houses, and the monitor said children were among the dead.")


def _story(config: Path, title_word: str) -> dict:
    listing = json.loads(cli("clusters", "-c", str(config), "--since", "30d", "--json").stdout)
    found = next(s for s in listing if title_word in s["title"])
    shown = cli("story", str(found["id"]), "-c", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_an_entry_edited_under_its_guid_is_revised_not_duplicated(tmp_path, server, routes) -> None:
    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Strike kills 12 in Idlib", STRIKE, NOW - timedelta(hours=2)),
                                                    ("a2", "Ferry terminal opens", FERRY, NOW - timedelta(hours=3))]))
    config = write_config(tmp_path, [{"url": server.url("/a.xml"), "name": "Harbour Gazette"}], extract={"fetch_pages": False},
                          schedule={"jitter": 0})
    poll(config, NOW)
    db = tmp_path / "aggregator.db"  # (or the database its config names)
    assert count(db, "articles") == 2

    later = NOW + timedelta(hours=1)
    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Strike kills 15 in Idlib", UPDATED, NOW - timedelta(hours=2)),
                                                    ("a2", "Ferry terminal opens", FERRY, NOW - timedelta(hours=3))]))
    poll(config, later)
    assert count(db, "articles") == 2  # one article revised, not a second one
    assert count(db, "article_revisions") == 1

    story = _story(config, "Idlib")
    assert story["title"] == "Strike kills 15 in Idlib" and "at least 15 people" in story["canonical_text"]
    assert story["first_reported"] == {"source": "Harbour Gazette", "at": (NOW - timedelta(hours=2)).isoformat(),
                                       "article_id": story["canonical_article_id"]}
    assert [f["newest"] for f in story["facts"] if f["what"] == "killed"] == ["15"]
    [revision] = story["revisions"]
    assert "at least 12 people" in revision["text"] and revision["title"] == "Strike kills 12 in Idlib"
    assert revision["seen_at"] == NOW.isoformat() and revision["replaced_at"] == later.isoformat()
    kinds = [e["kind"] for e in story["timeline"]]
    assert kinds == ["arrived", "revised"]
    revised = story["timeline"][1]
    assert revised["at"] == later.isoformat() and revised["source"] == "Harbour Gazette"
    assert "title changed: 'Strike kills 12 in Idlib' → 'Strike kills 15 in Idlib'" in revised["text"]
    assert "text changed (+2/−2 words)" in revised["text"] and "killed: 12 → 15" in revised["text"]
    assert story["updated_at"] == later.isoformat()

    # search finds the latest text, not the replaced one
    assert [s["id"] for s in json.loads(cli("search", "debris", "-c", str(config), "--json").stdout)] == [story["id"]]
    assert json.loads(cli("search", "rubble", "-c", str(config), "--json").stdout) == []

    # an unchanged poll adds nothing
    poll(config, later + timedelta(hours=1))
    assert count(db, "article_revisions") == 1 and count(db, "story_events") == 1 and count(db, "articles") == 2

    # the API gives the same shape; the story page shows the timeline and the earlier version, no script needed
    from starlette.testclient import TestClient

    from aggregator.config import load_config
    from aggregator.web import make_app

    with TestClient(make_app(load_config(config)), base_url="http://127.0.0.1:8080") as web:
        assert web.get(f"/api/stories/{story['id']}").json() == story
        page = web.get(f"/stories/{story['id']}").text
    assert '<section class="timeline">' in page and "killed: 12 → 15" in page
    assert "<details>" in page and "1 earlier version of article" in page and "bodies from the rubble" in page

    text = cli("story", str(story["id"]), "-c", str(config))
    lines = text.stdout.splitlines()
    start = lines.index("# timeline: local time, event, outlet, what")
    assert [line.split("\t")[1] for line in lines[start + 1 : start + 3]] == ["arrived", "revised"]
    assert lines.index("# timeline: local time, event, outlet, what") < next(i for i, line in enumerate(lines) if line.startswith("# variants"))


def _article_page(title: str, body: str) -> bytes:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split(". "))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head><body><main><article>'
            f"<h1>{title}</h1>{paragraphs}</article></main></body></html>").encode()


def _teaser_feed(server, title: str, when: datetime) -> bytes:
    link = server.url("/news/strike.html")
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Valley Times</title><link>{server.url("/")}</link>'
            f"<item><guid>v1</guid><title>{title}</title><link>{link}</link><description>Missile strike in Idlib.</description>"
            f"<pubDate>{when.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item></channel></rss>").encode()


def test_a_changed_title_refetches_a_page_extracted_article_once(tmp_path, server, routes) -> None:
    when = NOW - timedelta(hours=1)
    routes["/v.xml"] = Response(200, _teaser_feed(server, "Strike kills 12 in Idlib", when), {"Content-Type": "application/rss+xml"})
    routes["/news/strike.html"] = Response(200, _article_page("Strike kills 12 in Idlib", STRIKE), {"Content-Type": "text/html; charset=utf-8"})
    config = write_config(tmp_path, [{"url": server.url("/v.xml"), "name": "Valley Times"}], schedule={"jitter": 0})
    poll(config, NOW)
    assert server.paths().count("/news/strike.html") == 1
    poll(config, NOW + timedelta(hours=1))  # the same title: the page is not fetched again
    assert server.paths().count("/news/strike.html") == 1

    routes["/v.xml"] = Response(200, _teaser_feed(server, "Strike kills 15 in Idlib", when), {"Content-Type": "application/rss+xml"})
    routes["/news/strike.html"] = Response(200, _article_page("Strike kills 15 in Idlib", UPDATED), {"Content-Type": "text/html; charset=utf-8"})
    poll(config, NOW + timedelta(hours=2))
    assert server.paths().count("/news/strike.html") == 2
    story = _story(config, "Idlib")
    assert "at least 15 people" in story["canonical_text"] and len(story["revisions"]) == 1
    assert "at least 12 people" in story["revisions"][0]["text"]
    assert [e["kind"] for e in story["timeline"]] == ["arrived", "revised"] and "killed: 12 → 15" in story["timeline"][1]["text"]
    poll(config, NOW + timedelta(hours=3))  # revised: the new title is the stored one, nothing to fetch
    assert server.paths().count("/news/strike.html") == 2


def test_the_timeline_says_when_the_canonical_changed_and_why_and_when_a_figure_moved(tmp_path, server, routes) -> None:
    teaser = "A missile strike killed at least 12 people in a village in Idlib province on Tuesday, the Syrian Observatory said."
    serve(routes, "/a.xml", rss("Harbour Gazette", [("a1", "Strike kills 12 in Idlib", teaser, NOW - timedelta(hours=3))]))
    feeds = [{"url": server.url("/a.xml"), "name": "Harbour Gazette"}]
    config = write_config(tmp_path, feeds, extract={"fetch_pages": False}, schedule={"jitter": 0})
    poll(config, NOW - timedelta(hours=2))
    serve(routes, "/b.xml", rss("Coast Radio", [("b1", "Strike kills 15 in Idlib", UPDATED + " Video showed flattened homes.",
                                                 NOW - timedelta(hours=1))]))
    feeds.append({"url": server.url("/b.xml"), "name": "Coast Radio"})
    config = write_config(tmp_path, feeds, extract={"fetch_pages": False}, schedule={"jitter": 0})
    poll(config, NOW)

    story = _story(config, "Idlib")
    assert len(story["variants"]) == 2, story["variants"]
    coast = next(v["article_id"] for v in story["variants"] if v["source"] == "Coast Radio")
    gazette = next(v["article_id"] for v in story["variants"] if v["source"] == "Harbour Gazette")
    assert story["canonical_article_id"] == coast
    assert story["first_reported"]["source"] == "Harbour Gazette" and story["first_reported"]["article_id"] == gazette
    assert [e["kind"] for e in story["timeline"]] == ["arrived", "arrived", "figure", "canonical"]
    figure, canonical = story["timeline"][2:]
    assert figure["text"] == "killed: 12 → 15 (Coast Radio)" and figure["article_id"] == coast
    assert canonical["article_id"] == coast and canonical["at"] == NOW.isoformat()
    assert canonical["text"].startswith(f"#{coast} (Coast Radio) now leads: the earliest full report; #{gazette} (Harbour Gazette) was a teaser")
    assert story["revisions"] == []


def test_a_footer_the_template_step_drops_in_one_poll_and_keeps_in_the_next_is_no_revision(tmp_path, server, routes) -> None:
    """Three of six items carry a footer: template then (half the items), dropped from the stored texts. A
    seventh item without it puts the footer under the threshold: the feed's texts now keep it. The stored
    articles were not revised; only the feed's layout moved."""
    import html as html_lib

    words = ["harbour", "bridge", "school", "market", "river", "airport", "stadium"]
    footer = "Read more local news at the Harbour Gazette website."

    def item(i: int, with_footer: bool) -> tuple[str, str, str, datetime]:
        body = f"<p>The {words[i]} story: the council met on Monday to discuss the {words[i]} and voted on a new plan for it.</p>"
        body += f"<p>{footer}</p>" if with_footer else ""
        return (f"g{i}", f"News about the {words[i]}", html_lib.escape(body), NOW - timedelta(hours=i + 1))

    serve(routes, "/a.xml", rss("Harbour Gazette", [item(i, i < 3) for i in range(6)]))
    config = write_config(tmp_path, [{"url": server.url("/a.xml"), "name": "Harbour Gazette"}], extract={"fetch_pages": False},
                          schedule={"jitter": 0})
    poll(config, NOW)
    db = tmp_path / "aggregator.db"
    assert count(db, "articles") == 6
    serve(routes, "/a.xml", rss("Harbour Gazette", [item(i, i < 3) for i in range(7)]))
    poll(config, NOW + timedelta(hours=1))
    assert count(db, "articles") == 7
    assert count(db, "article_revisions") == 0 and count(db, "story_events") == 0
