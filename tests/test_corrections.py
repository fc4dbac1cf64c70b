"""The reader's corrections on real feeds polled from 127.0.0.1: a split story's halves stay apart
for later articles, a merged story takes in what is close to the story merged in, undo restores the
memberships exactly, restarts keep the constraints, the commands refuse while another process holds
the storage, and ``eval --corrections`` says how much each correction lifts the score."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aggregator.config import load_config
from aggregator.corrections import split_story
from aggregator.factory import make_aggregator
from helpers import DATA, cli, rows, write_config
from test_reading import FERRY, STRIKE, poll, rss, serve

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
HOSPITALS = ("Hospitals in Idlib province were overwhelmed on Tuesday as doctors treated the wounded of the missile strike, and families "
             "buried their dead; aid groups called for medical supplies and the United Nations urged all sides to protect civilians.")


def memberships(config: Path) -> dict[int, int]:
    """article id -> story id, as stored."""
    return dict(rows(config.parent / "aggregator.db", "select article_id, story_id from story_members"))


def canonicals(config: Path) -> dict[int, int]:
    return dict(rows(config.parent / "aggregator.db", "select id, canonical_article_id from stories"))


def setup(tmp_path: Path, server, routes) -> Path:
    """Three outlets: a strike, its copy, a hospitals report the rule puts in the strike's story, a ferry story."""
    serve(routes, "/a.xml", rss("Gazette", [("a1", "Strike kills 12 in Idlib", STRIKE, NOW - timedelta(hours=5)),
                                            ("a2", "Ferry terminal opens", FERRY, NOW - timedelta(hours=5, minutes=30))]))
    serve(routes, "/b.xml", rss("Radio", [("b1", "At least 12 killed in Idlib strike", STRIKE + " Video showed flattened homes.",
                                           NOW - timedelta(hours=4))]))
    serve(routes, "/c.xml", rss("Courier", [("c1", "Idlib hospitals overwhelmed after strike", HOSPITALS, NOW - timedelta(hours=3))]))
    feeds = [{"url": server.url(p), "name": n} for p, n in (("/a.xml", "Gazette"), ("/b.xml", "Radio"), ("/c.xml", "Courier"))]
    feeds.append({"url": server.url("/d.xml"), "name": "Times"})
    serve(routes, "/d.xml", rss("Times", []))
    path = write_config(tmp_path, feeds, extract={"fetch_pages": False}, schedule={"jitter": 0})
    poll(path, NOW)
    return path


def article_ids(config: Path) -> dict[str, int]:
    return dict(rows(config.parent / "aggregator.db", "select guid, id from articles"))


def later(routes, guid: str, title: str, text: str, hours: float) -> None:
    serve(routes, "/d.xml", rss("Times", [(guid, title, text, NOW + timedelta(hours=hours))]))


def test_a_split_story_stays_split_for_later_articles_and_undo_restores_it(tmp_path, server, routes) -> None:
    config = setup(tmp_path, server, routes)
    ids = article_ids(config)
    before = memberships(config)
    strike = before[ids["a1"]]
    assert before[ids["b1"]] == before[ids["c1"]] == strike  # the rule put the hospitals report in the strike's story
    heads = canonicals(config)

    split = cli("story", "split", str(strike), str(ids["c1"]), "-c", str(config))
    assert split.returncode == 0, split.stderr
    after = memberships(config)
    half = after[ids["c1"]]
    assert half != strike and after[ids["a1"]] == after[ids["b1"]] == strike
    shown = json.loads(cli("story", str(half), "-c", str(config), "--json").stdout)
    assert [v["article_id"] for v in shown["variants"]] == [ids["c1"]] and shown["variants"][0]["kind"] == "canonical"

    # An article close to both halves (the strike's words and the hospitals' words), polled after a
    # restart (``poll`` builds the index afresh from the store): it joins one half, never both.
    later(routes, "d1", "Idlib strike: hospitals overwhelmed, 12 dead", STRIKE + " " + HOSPITALS, 1)
    poll(config, NOW + timedelta(hours=2))
    now = memberships(config)
    assert now[article_ids(config)["d1"]] in {strike, half}
    assert now[ids["a1"]] == now[ids["b1"]] == strike and now[ids["c1"]] == half  # the halves stay apart

    listed = json.loads(cli("corrections", "-c", str(config), "--json").stdout)
    assert [(c["kind"], c["story_id"], c["other_story_id"], c["article_ids"]) for c in listed] == [("split", strike, half, [ids["c1"]])]
    assert "split story" in cli("corrections", "-c", str(config)).stdout

    undone = cli("corrections", "undo", str(listed[0]["id"]), "-c", str(config))
    assert undone.returncode == 0, undone.stderr
    restored = memberships(config)
    assert {a: s for a, s in restored.items() if a in before} == before  # exactly as before the split
    assert restored[article_ids(config)["d1"]] == strike  # what joined a half since goes back with it
    assert canonicals(config)[strike] == heads[strike]
    assert json.loads(cli("corrections", "-c", str(config), "--json").stdout)[0]["undone_at"] is not None
    again = cli("corrections", "undo", str(listed[0]["id"]), "-c", str(config))
    assert again.returncode == 2 and "undone already" in again.stderr


def test_a_split_made_in_process_holds_for_the_next_round(tmp_path, server, routes) -> None:
    config = setup(tmp_path, server, routes)
    ids = article_ids(config)
    agg = make_aggregator(load_config(config), clock=lambda: NOW + timedelta(hours=2))
    try:
        strike = memberships(config)[ids["a1"]]
        done = split_story(agg, strike, [ids["c1"]])  # the live index moves too, not only the store
        later(routes, "d1", "Hospitals in Idlib overwhelmed", HOSPITALS + " Funerals were held in the evening.", 1)
        asyncio.run(agg.poll_round(NOW + timedelta(hours=2), due_only=False))
    finally:
        agg.close()
    now = memberships(config)
    assert now[article_ids(config)["d1"]] == done.other_story_id and now[ids["a1"]] == strike


def test_a_merged_story_takes_in_articles_close_to_the_story_merged_in(tmp_path, server, routes) -> None:
    config = setup(tmp_path, server, routes)
    ids = article_ids(config)
    before = memberships(config)
    strike, ferry = before[ids["a1"]], before[ids["a2"]]
    assert strike != ferry
    merged = cli("story", "merge", str(strike), str(ferry), "-c", str(config))
    assert merged.returncode == 0 and "merged into story" in merged.stdout, merged.stderr
    assert memberships(config)[ids["a2"]] == strike
    assert cli("story", str(ferry), "-c", str(config)).returncode == 1  # emptied: listed nowhere
    listing = json.loads(cli("clusters", "-c", str(config), "--since", "2d", "--json").stdout)
    assert ferry not in [s["id"] for s in listing]

    later(routes, "d1", "New ferry terminal welcomes first passengers", FERRY + " The first boat left at seven.", 1)
    poll(config, NOW + timedelta(hours=2))  # a restart, then a poll
    assert memberships(config)[article_ids(config)["d1"]] == strike

    undo = cli("corrections", "undo", "1", "-c", str(config))
    assert undo.returncode == 0, undo.stderr
    back = memberships(config)
    assert {a: s for a, s in back.items() if a in before} == before
    assert back[article_ids(config)["d1"]] == strike  # what joined the merged story since stays in it


def test_a_merged_story_says_where_it_went_through_later_merges_until_undone(tmp_path, server, routes) -> None:
    config = setup(tmp_path, server, routes)
    ids = article_ids(config)
    strike, ferry = memberships(config)[ids["a1"]], memberships(config)[ids["a2"]]
    assert cli("story", "split", str(strike), str(ids["c1"]), "-c", str(config)).returncode == 0
    hospitals = memberships(config)[ids["c1"]]
    for kept, gone in ((strike, ferry), (hospitals, strike)):  # the ferry into the strike, then the strike into the hospitals
        assert cli("story", "merge", str(kept), str(gone), "-c", str(config)).returncode == 0

    shown = cli("story", str(ferry), "-c", str(config))  # followed to the story that holds its articles now
    assert shown.returncode == 1 and shown.stderr == f"error: story {ferry} was merged into story {hospitals}\n" and shown.stdout == ""
    assert cli("story", str(strike), "-c", str(config)).stderr == f"error: story {strike} was merged into story {hospitals}\n"
    as_json = cli("story", str(ferry), "--json", "-c", str(config))
    assert as_json.returncode == 1 and json.loads(as_json.stdout) == {"error": f"story {ferry} was merged into story {hospitals}",
                                                                      "merged_into": hospitals}
    assert cli("story", "999", "-c", str(config)).stderr == "error: no story with id 999\n"  # never merged: as before

    assert cli("corrections", "undo", "3", "-c", str(config)).returncode == 0  # the strike back out of the hospitals
    assert cli("story", str(ferry), "-c", str(config)).stderr == f"error: story {ferry} was merged into story {strike}\n"
    assert cli("story", str(strike), "-c", str(config)).returncode == 0
    assert cli("corrections", "undo", "2", "-c", str(config)).returncode == 0  # the ferry back out of the strike
    back = cli("story", str(ferry), "-c", str(config), "--json")
    assert back.returncode == 0 and json.loads(back.stdout)["id"] == ferry


def test_mistakes_are_one_line_errors(tmp_path, server, routes) -> None:
    config = setup(tmp_path, server, routes)
    ids = article_ids(config)
    strike = memberships(config)[ids["a1"]]
    for args, message in ((["story", "split", str(strike), str(ids["a2"])], "is not in story"),
                          (["story", "split", str(strike), str(ids["a1"]), str(ids["b1"]), str(ids["c1"])], "every article"),
                          (["story", "merge", str(strike), str(strike)], "two different"),
                          (["story", "merge", str(strike), "999"], "no story with id 999"),
                          (["corrections", "undo", "7"], "no correction")):
        result = cli(*args, "-c", str(config))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert "no corrections yet" in cli("corrections", "-c", str(config)).stdout


def hold_storage(config: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the storage's one-writer lock (as a daemon or a poll does) for ``seconds``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom aggregator.config import load_config\nfrom aggregator.factory import storage_lock\n"
         f"with storage_lock(load_config({str(config)!r})):\n    print('held', flush=True)\n    time.sleep({seconds})"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_while_another_process_holds_the_storage_the_commands_queue_for_it(tmp_path, server, routes) -> None:
    config = setup(tmp_path, server, routes)
    ids = article_ids(config)
    before = memberships(config)
    strike, ferry = before[ids["a1"]], before[ids["a2"]]
    holder = hold_storage(config, 60)
    try:
        for args, message in ((["story", "split", str(strike), str(ids["a2"])], "is not in story"),  # refused up front, as without it
                              (["story", "merge", str(strike), "999"], "no story with id 999"),
                              (["corrections", "undo", "7"], "no correction")):
            refused = cli(*args, "-c", str(config))
            assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr, (args, refused.stderr)
        timed_out = cli("story", "split", str(strike), str(ids["c1"]), "-c", str(config), "--wait", "0.3")
        assert timed_out.returncode == 0 and timed_out.stdout.startswith(
            f"request 1 queued, not applied yet after 0.3 s: split story {strike}: move article {ids['c1']}; the daemon"), timed_out.stdout
        queued = cli("story", "merge", str(strike), str(ferry), "-c", str(config), "--wait", "0")
        assert queued.returncode == 0 and queued.stdout.startswith(f"request 2 queued: merge story {ferry} into story {strike};"), queued.stdout
        listing = cli("corrections", "-c", str(config)).stdout
        assert "request 1\t" in listing and "request 2\t" in listing and "\tpending\t" in listing, listing
        assert memberships(config) == before  # nothing moved yet: the holder owns the dedup index
    finally:
        holder.kill()
        holder.wait()

    # A command that waits takes over when the owner stops: it applies the queue first, in order, then its own request.
    held_briefly = hold_storage(config, 1)
    try:
        split = cli("story", "split", str(strike), str(ids["b1"]), "-c", str(config))
    finally:
        held_briefly.wait()
    assert split.returncode == 0, split.stderr
    lines = split.stdout.splitlines()
    assert lines[:2] == [f"request 1, queued before, applied: split story {strike}: move article {ids['c1']}",
                         f"request 2, queued before, applied: merge story {ferry} into story {strike}"], lines
    assert lines[2].startswith(f"story {strike} split: 1 article moved to the new story") and "(correction 3;" in lines[2], lines
    after = memberships(config)
    assert after[ids["a2"]] == after[ids["a1"]] == strike and len({after[ids["b1"]], after[ids["c1"]], strike}) == 3
    undone = cli("corrections", "undo", "3", "-c", str(config))  # no owner now: made here, as before
    assert undone.returncode == 0 and undone.stdout.startswith("correction 3 undone: split story"), undone.stdout
    assert "request" not in cli("corrections", "-c", str(config)).stdout  # none left queued


def test_the_owner_of_the_index_applies_the_queue(tmp_path, server, routes) -> None:
    """What the daemon's tick calls (and a separate clusterer process would): each request applied
    through the same functions, or failed with the reason, and finished once."""
    from aggregator.corrections import apply_pending_corrections, request_correction
    from aggregator.errors import UsageError
    from aggregator.factory import open_library
    from aggregator.store.interface import CorrectionRequest

    config = setup(tmp_path, server, routes)
    ids = article_ids(config)
    strike = memberships(config)[ids["a1"]]
    lib = open_library(load_config(config))
    try:
        asked = request_correction(lib, CorrectionRequest("split", strike, article_ids=(ids["c1"],)))
        twice = request_correction(lib, CorrectionRequest("split", strike, article_ids=(ids["c1"],)))  # fine now; not once the first is applied
        try:
            request_correction(lib, CorrectionRequest("split", strike, article_ids=(ids["a2"],)))
            raise AssertionError("a split of an article not in the story is refused up front")
        except UsageError as exc:
            assert f"article {ids['a2']} is not in story {strike}" in str(exc)
    finally:
        lib.close()
    agg = make_aggregator(load_config(config), clock=lambda: NOW + timedelta(hours=2))
    try:
        done, failed = apply_pending_corrections(agg)
        assert apply_pending_corrections(agg) == []
    finally:
        agg.close()
    assert (done.id, done.status, done.correction_id, done.reason) == (asked.id, "done", 1, None)
    assert (failed.id, failed.status, failed.correction_id) == (twice.id, "failed", None)
    assert failed.reason == f"article {ids['c1']} is not in story {strike} (its articles: {ids['a1']}, {ids['b1']})"
    assert memberships(config)[ids["c1"]] != strike


def test_eval_replays_corrections_and_prints_each_ones_lift() -> None:
    labeled, fixes = DATA / "corrections" / "labeled.jsonl", DATA / "corrections" / "corrections.jsonl"
    plain = json.loads(cli("eval", str(labeled), "--json").stdout)
    result = cli("eval", str(labeled), "--corrections", str(fixes), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["bcubed"] == plain["bcubed"]  # the scores without corrections are unchanged
    split, merge = data["corrections"]
    # The split moves the hospitals report out; the next hospitals article then joins it, not the strike.
    assert split["kind"] == "split" and split["articles_moved"] == 1
    assert split["bcubed_f1_before"] == plain["bcubed"]["f1"] < split["bcubed_f1_after"] == 1.0
    assert merge["kind"] == "merge" and merge["lift"] < 0  # merging the ferry into the strike is a mistake
    text = cli("eval", str(labeled), "--corrections", str(fixes)).stdout
    assert "correction (line 1) split the story of 1: 1 article(s) moved; B-cubed F1" in text and "(+0.200)" in text
    bad = DATA / "corrections" / "labeled.jsonl"
    refused = cli("eval", str(labeled), "--corrections", str(bad))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
