"""``aggregator explain A B`` and ``story ID --why`` on real databases from feeds polled on 127.0.0.1
(and the demo's): the explanation's verdict must agree with where the articles are stored, so a
change of the join rule that explain.py does not follow fails here."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.config import load_config
from aggregator.dedup.canonical import choose_canonical
from aggregator.dedup.explain import CanonicalMember, why_canonical
from aggregator.factory import storage_lock
from helpers import cli, rows, write_config
from test_reading import FERRY, NOW, STRIKE, poll, rss, serve


def articles(config: Path) -> dict[str, int]:
    """Article ids by guid."""
    return dict(rows(config.parent / "aggregator.db", "select guid, id from articles"))


def explain(config: Path, a: int, b: int) -> dict:
    result = cli("explain", str(a), str(b), "-c", str(config), "--json")
    assert result.returncode == 0, result.stderr
    data: dict = json.loads(result.stdout)
    return data


@pytest.fixture
def wire(tmp_path: Path, server, routes) -> Path:
    """A wire story, a reprint of it (a byline added), and an unrelated article by the reprinting outlet."""
    serve(routes, "/wire.xml", rss("Global Wire", [("w1", "Strike kills 12 in Idlib, monitor says", STRIKE, NOW - timedelta(hours=3))]))
    serve(routes, "/herald.xml", rss("Daily Herald", [
        ("h1", "At least 12 killed in Idlib strike", STRIKE + " Reporting by Lina Haddad.", NOW - timedelta(hours=2)),
        ("h2", "Ferry terminal opens", FERRY, NOW - timedelta(hours=1)),
    ]))
    feeds = [{"url": server.url("/wire.xml"), "name": "Global Wire"}, {"url": server.url("/herald.xml"), "name": "Daily Herald"}]
    path = write_config(tmp_path, feeds, extract={"fetch_pages": False}, schedule={"jitter": 0})
    poll(path, NOW)
    return path


def test_a_reprint_is_explained_as_a_copy_and_an_unrelated_article_as_not_the_same_story(wire: Path) -> None:
    ids = articles(wire)
    copy = explain(wire, ids["h1"], ids["w1"])  # either order: the later is decided against the earlier
    assert (copy["earlier"]["article_id"], copy["later"]["article_id"]) == (ids["w1"], ids["h1"])
    assert copy["copy"]["jaccard"] >= 0.9 and copy["copy"]["is_copy"] and copy["copy"]["shared_band"]
    assert copy["copy"]["best_copy_id"] == ids["w1"] and copy["decided_kind"] == "copy"
    assert copy["stored_same"] and copy["predicted_same"] and copy["agrees_with_store"] and copy["rule_agrees"]
    assert copy["verdict"].startswith("copy tier: estimated Jaccard 0.9") and "≥ 0.5 → same story" in copy["verdict"]
    assert copy["report"]["threshold"] == load_config(wire).settings.dedup.report_threshold

    other = explain(wire, ids["w1"], ids["h2"])
    assert not other["stored_same"] and not other["predicted_same"] and other["agrees_with_store"] and other["rule_agrees"]
    assert other["copy"]["jaccard"] < other["copy"]["jaccard_threshold"] and not other["copy"]["is_copy"]
    assert other["report"]["cosine"] < 0.1
    assert other["report"]["story"]["score"] < other["report"]["threshold"] / 2  # alone, 2·s1 must reach the threshold
    assert other["decided_story"] is None and other["verdict"].endswith("→ not the same story")

    text = cli("explain", str(ids["w1"]), str(ids["h1"]), "-c", str(wire))
    assert text.returncode == 0, text.stderr
    assert "copy tier: estimated Jaccard 0.9" in text.stdout and "verdict: copy tier" in text.stdout
    assert "stored: one story" in text.stdout and "report tier: cosine" in text.stdout


def test_the_same_outlet_penalty_is_shown(wire: Path) -> None:
    ids = articles(wire)
    data = explain(wire, ids["h1"], ids["h2"])  # the Herald's ferry article against the story the Herald reprinted
    assert data["same_outlet"]
    story = data["report"]["story"]
    assert story["story_id"] == data["earlier"]["story_id"] and story["same_outlet_penalty"] == pytest.approx(0.1)
    assert not story["candidate"]  # no rare term in common: scored only to explain
    assert story["score"] == pytest.approx(story["similarity"] - story["crowding"] - story["decay"] - 0.1, abs=1e-6)
    assert not data["predicted_same"] and data["agrees_with_store"]
    text = cli("explain", str(ids["h1"]), str(ids["h2"]), "-c", str(wire)).stdout
    assert "same outlet 0.1" in text and "incl. same-outlet penalty 0.1" in text


def test_story_why_names_the_canonical_and_the_rule(wire: Path) -> None:
    ids = articles(wire)
    story = json.loads(cli("story", "1", "-c", str(wire), "--json").stdout)
    assert {v["article_id"] for v in story["variants"]} == {ids["w1"], ids["h1"]}
    why = json.loads(cli("story", "1", "--why", "-c", str(wire), "--json").stdout)
    assert why["stored_canonical_id"] == why["chosen_id"] == ids["w1"] == story["canonical_article_id"]
    assert why["reason"].startswith("the earliest of 2 full reports")
    notes = {m["article_id"]: m["note"] for m in why["members"]}
    assert notes == {ids["w1"]: "the canonical", ids["h1"]: "a full report, published later"}
    text = cli("story", "1", "--why", "-c", str(wire)).stdout
    assert f"canonical: #{ids['w1']}, the earliest of 2 full reports" in text and "(full)" in text


def test_unknown_ids_are_one_line_errors_and_explain_needs_no_writer_lock(wire: Path) -> None:
    ids = articles(wire)
    missing = cli("explain", str(ids["w1"]), "999", "-c", str(wire))
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "error: no article with id 999 (`story ID --json` lists a story's in variants[].article_id)")
    assert cli("explain", "0", str(ids["w1"]), "-c", str(wire)).returncode == 1
    assert cli("explain", str(ids["w1"]), str(ids["w1"]), "-c", str(wire)).returncode == 1
    before = rows(wire.parent / "aggregator.db", "select count(*) from dedup_snapshots")
    with storage_lock(load_config(wire)):  # a daemon is writing: explain reads alongside
        assert cli("explain", str(ids["w1"]), str(ids["h1"]), "-c", str(wire)).returncode == 0
    assert rows(wire.parent / "aggregator.db", "select count(*) from dedup_snapshots") == before


def test_the_demo_idlib_stories_are_explained_as_they_are_stored(tmp_path: Path) -> None:
    """The demo's Idlib and Syria articles, every pair: the two strikes two days apart stay apart (by
    the same-outlet penalty), the reprints are copies, and every verdict matches the database."""
    demo = tmp_path / "demo"
    assert cli("demo", "--dir", str(demo)).returncode == 0
    config = demo / "feeds.yaml"
    with sqlite3.connect(demo / "aggregator.db") as db:
        found = [r[0] for r in db.execute("select id from articles where title like '%Idl%' or title like '%Syri%' order by id")]
        drone = db.execute("select min(id) from articles where title like 'Drone strike%Idlib%'").fetchone()[0]
    assert len(found) >= 6
    verdicts = {}
    for a, b in itertools.combinations(found, 2):
        data = explain(config, a, b)
        assert data["agrees_with_store"] and data["rule_agrees"], (a, b, data["verdict"])
        verdicts[a, b] = data
    apart = verdicts[found[0], drone]
    assert not apart["stored_same"] and apart["hours_apart"] > 40
    assert apart["report"]["story"]["same_outlet_penalty"] == pytest.approx(0.1)
    assert any(v["decided_kind"] == "copy" and v["predicted_same"] for v in verdicts.values())


def test_why_canonical_never_lets_a_teaser_lead_and_breaks_ties_as_the_rule_does() -> None:
    t = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    members = [
        CanonicalMember(1, "Teaser Times", "Strike", t - timedelta(hours=1), t, 200),
        CanonicalMember(2, "Wire", "Strike kills 12", t, t + timedelta(minutes=20), 1400),
        CanonicalMember(3, "Herald", "Strike kills 12", t, t + timedelta(minutes=10), 1000),
        CanonicalMember(4, "Late", "Strike kills 12", t - timedelta(hours=5), t + timedelta(hours=2), 1300, reported_at=t + timedelta(hours=2)),
    ]
    why = why_canonical(7, 3, members)
    assert why.chosen_id == choose_canonical(members).article_id == 3
    assert why.reason.startswith("the earliest of 3 full reports, tied on the times before first seen: first seen decides")
    notes = {m.article_id: m.note for m in why.members}
    assert notes[1].startswith("a teaser (200 < 700 chars)") and notes[2] == "same times, first seen later"
    assert notes[4] == "a full report, reported later"
    assert "not credible" in why.reason
    assert any("counts as reported" in line for line in why.lines())
