"""The same labeled articles give the same stories through `aggregator eval` and through the real
fetch/parse path (a feed on 127.0.0.1 polled by the facade the daemon uses)."""

from __future__ import annotations

import asyncio
import html
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from aggregator.factory import make_aggregator
from aggregator.tools.demo import load_corpus
from aggregator.tools.evaluate import LabeledArticle, evaluate, read_labeled
from aggregator.tools.feedserver import Response
from helpers import SHARED

START = datetime(2026, 11, 2, tzinfo=timezone.utc)


def demo_records() -> list[dict[str, object]]:
    rows = [
        {"id": a.key.replace("/", "-"), "title": a.title, "text": "\n\n".join(a.paragraphs),
         "published": (START + timedelta(hours=a.hour)).isoformat().replace("+00:00", "Z"),
         "source": a.outlet, "url": None, "cluster": a.event, "lang": "en"}
        for a in load_corpus().articles
    ]
    return sorted(rows, key=lambda r: (str(r["published"]), str(r["id"])))


def as_feed(records: list[LabeledArticle]) -> bytes:
    items = "".join(
        f"<item><title>{escape(r.title)}</title><guid isPermaLink=\"false\">{escape(r.id)}</guid>"
        + (f"<pubDate>{format_datetime(r.published, usegmt=True)}</pubDate>" if r.published else "")
        + (f"<source url=\"http://127.0.0.1/{escape(r.source)}\">{escape(r.source)}</source>" if r.source else "")
        + f"<description>{escape(''.join(f'<p>{html.escape(p)}</p>' for p in r.text.split(chr(10) + chr(10))))}</description></item>"
        for r in records
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Labeled</title>{items}</channel></rss>'.encode()


def partition(assignment: dict[str, object]) -> set[frozenset[str]]:
    groups: dict[object, set[str]] = {}
    for article, story in assignment.items():
        groups.setdefault(story, set()).add(article)
    return {frozenset(g) for g in groups.values()}


def feed_assignment(records: list[LabeledArticle], server, routes, make_config) -> dict[str, object]:
    routes["/labeled.xml"] = Response(200, as_feed(records), {"Content-Type": "application/rss+xml; charset=utf-8"})
    config = make_config([{"url": server.url("/labeled.xml"), "name": "labeled"}], extract={"fetch_pages": False},
                         fetch={"max_body_bytes": 50_000_000})
    dated = [r.published for r in records if r.published]
    now = max(dated) + timedelta(hours=1) if dated else datetime.now(timezone.utc)
    agg = make_aggregator(config, clock=lambda: now)
    try:
        reports = asyncio.run(agg.poll_round(now))
        assert reports[0].error is None and reports[0].new_articles == len(records)
        guid_story = {}
        with agg.store.engine.connect() as conn:
            from sqlalchemy import text

            for guid, story in conn.execute(text("select a.guid, m.story_id from articles a join story_members m on m.article_id = a.id")):
                guid_story[guid] = story
        return guid_story
    finally:
        agg.close()


@pytest.mark.parametrize("dated", [True, False], ids=["dated", "undated"])
def test_demo_corpus_through_feeds_matches_eval(tmp_path, server, routes, make_config, dated):
    """Dated, the articles are decided one by one in publication order; undated, as one batch
    (eval: the whole file; the daemon: a poll's undated entries). Both paths must agree."""
    rows = demo_records()
    if not dated:
        rows = sorted(({**r, "published": None} for r in rows), key=lambda r: str(r["id"]))  # the feed path orders undated entries by guid
    path = tmp_path / "demo.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    records = read_labeled(path)
    expected = evaluate(records, make_config([]).settings.dedup)
    assert expected.scores.bcubed_f1 > 0.9  # a meaningful clustering, not all singletons
    assert partition(feed_assignment(records, server, routes, make_config)) == partition(dict(expected.assignment))


@pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="../shared/data not present")
def test_real_labeled_news_through_feeds_matches_eval(tmp_path, server, routes, make_config):
    records = read_labeled(SHARED / "data" / "allsides_neus" / "dev.jsonl")[:200]
    expected = evaluate(records, make_config([]).settings.dedup)
    assert partition(feed_assignment(records, server, routes, make_config)) == partition(dict(expected.assignment))


@pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="../shared/data not present")
def test_undated_labeled_news_through_feeds_matches_eval(tmp_path, server, routes, make_config):
    """The probe file has no dates: one batch, in eval and through a feed (its ids are in guid order).
    It has no outlets either; a feed's entries without one count as the feed's own, so both paths
    are given the same stand-in outlets."""
    from dataclasses import replace

    records = [replace(r, source=f"outlet {n % 9}") for n, r in enumerate(read_labeled(SHARED / "data" / "allsides_neus_probe" / "dev.jsonl")[:300])]
    expected = evaluate(records, make_config([]).settings.dedup)
    assert len(set(expected.assignment.values())) < 0.9 * len(records)  # some stories formed
    assert partition(feed_assignment(records, server, routes, make_config)) == partition(dict(expected.assignment))


def test_restart_mid_stream_gives_the_same_stories(tmp_path, server, routes, monkeypatch):
    """Snapshot + replay: a restart between two polls changes no decision."""
    import aggregator.ingest as ingest
    from aggregator.config import load_config
    from helpers import write_config

    monkeypatch.setattr(ingest, "SNAPSHOT_EVERY", 25)  # so that a snapshot and a replayed tail both occur
    path = tmp_path / "demo.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in demo_records()) + "\n", encoding="utf-8")
    records = read_labeled(path)
    stages = [36, 56, len(records)]  # snapshot after the first poll (>= 25 new), none after the second (20 new)
    current = {"body": b""}
    routes["/labeled.xml"] = lambda request: Response(200, current["body"], {"Content-Type": "application/rss+xml"})
    now = max(r.published for r in records if r.published) + timedelta(hours=1)

    def run(directory: Path, restart: bool) -> set[frozenset[str]]:
        directory.mkdir()
        config = load_config(write_config(directory, [{"url": server.url("/labeled.xml"), "name": "labeled"}],
                                          extract={"fetch_pages": False}))
        agg = make_aggregator(config, clock=lambda: now)
        for stage, size in enumerate(stages):
            current["body"] = as_feed(records[:size])
            asyncio.run(agg.poll_round(now, due_only=False))
            if stage == 1 and restart:
                snapshot = agg.store.latest_snapshot(agg.dedup.scheme)
                assert snapshot is not None and snapshot[0] == stages[0]  # the restart must replay a tail
                agg.close()
                agg = make_aggregator(config, clock=lambda: now)
        with agg.store.engine.connect() as conn:
            from sqlalchemy import text

            rows = conn.execute(text("select a.guid, m.story_id from articles a join story_members m on m.article_id = a.id")).all()
        agg.close()
        return partition(dict(rows))

    assert run(tmp_path / "straight", restart=False) == run(tmp_path / "restarted", restart=True)


def test_a_round_stores_articles_in_publication_order_whatever_answers_first(server, routes, make_config):
    """Stories must not depend on network timing: the feed with the older report answers last, yet
    its report is stored (and decided) first; the other feed's two reports go either side of it."""
    import time

    def feed(name: str, delay: float, hours: list[int]) -> object:
        items = "".join(
            f"<item><title>{name} report {h}</title><guid>{name}-{h}</guid>"
            f"<pubDate>{format_datetime(START + timedelta(hours=h), usegmt=True)}</pubDate>"
            f"<description>A report by {name} on the strike in Idlib that killed at least 12 people.</description></item>"
            for h in hours
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>{items}</channel></rss>'.encode()

        def answer(request):
            time.sleep(delay)
            return Response(200, body, {"Content-Type": "application/rss+xml"})

        return answer

    routes["/slow.xml"] = feed("slow", 0.4, [2])
    routes["/fast.xml"] = feed("fast", 0.0, [3, 1])
    config = make_config([{"url": server.url("/fast.xml"), "name": "fast"}, {"url": server.url("/slow.xml"), "name": "slow"}])
    agg = make_aggregator(config, clock=lambda: START + timedelta(hours=4))
    try:
        reports = asyncio.run(agg.poll_round(due_only=False))
        with agg.store.engine.connect() as conn:
            order = [row[0] for row in conn.exec_driver_sql("SELECT guid FROM articles ORDER BY id")]
    finally:
        agg.close()
    assert [r.new_articles for r in reports] == [2, 1]
    assert order == ["fast-1", "slow-2", "fast-3"]


def test_a_rounds_stories_do_not_depend_on_the_order_of_its_feeds(tmp_path):
    """A first round over five outlets' three-day backlogs: the same stories whichever feed is
    listed (or answers) last. Stored feed by feed, the seed story split when meridian came last."""
    from aggregator.config import load_config
    from aggregator.tools.demo import DemoSite
    from aggregator.tools.feedserver import LoopbackServer
    from helpers import write_config

    outlets = ["globalwire", "meridian", "dailyherald", "northstar", "citizen"]
    corpus = load_corpus()
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=72)
    site = DemoSite(corpus, start, feed_items=100)
    site.now = start + timedelta(hours=72)
    partitions = []
    with LoopbackServer(site) as server:
        site.base_url = server.base_url
        for k, order in enumerate([outlets, outlets[::-1], [outlets[0], *outlets[2:], "meridian"]]):
            directory = tmp_path / str(k)
            directory.mkdir()
            feeds = [{"url": server.url(f"/feeds/{slug}.xml"), "name": corpus.outlet(slug).name} for slug in order]
            agg = make_aggregator(load_config(write_config(directory, feeds, extract={"fetch_pages": False})), clock=lambda: site.now)
            try:
                reports = asyncio.run(agg.poll_round(due_only=False))
                assert all(r.error is None for r in reports)
                with agg.store.engine.connect() as conn:
                    rows = conn.exec_driver_sql("select a.guid, m.story_id from articles a join story_members m on m.article_id = a.id").all()
            finally:
                agg.close()
            partitions.append(partition(dict(rows)))
    assert len(partitions[0]) > 10
    assert partitions[0] == partitions[1] == partitions[2]
