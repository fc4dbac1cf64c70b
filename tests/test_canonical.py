"""The canonical rule and the placement ``decide`` returns: pure logic, tested without a database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime

import pytest

from aggregator.config import DedupSettings
from aggregator.dedup import NEW_ARTICLE, Deduplicator
from aggregator.dedup.canonical import CREDIBLE_MARGIN_S, Member, MemberUpdate, choose_canonical, credible_time, settle
from aggregator.factory import make_aggregator
from aggregator.tools.feedserver import Response
from test_dedup import COPY, COPY_TITLE, ORIGINAL, ORIGINAL_TITLE, REWRITE, REWRITE_TITLE, T0, text

HOUR = 3600.0


def member(article_id: int, hours: float, length: int, seen: float | None = None) -> Member:
    return Member(article_id, hours * HOUR, (hours if seen is None else seen) * HOUR, length)


def relation(a: int, b: int) -> tuple[str, float]:
    """A stand-in for the rule's relation: a report, similarity from the ids (so each pair is told apart)."""
    return "report", round(0.5 + (a % 7) / 100 + (b % 5) / 1000, 4)


def test_a_new_story_is_its_own_canonical() -> None:
    settled = settle([], member(NEW_ARTICLE, 3, 500), relation)  # type: ignore[arg-type]
    assert settled.canonical_id == NEW_ARTICLE and settled.first_reported == 3 * HOUR
    assert settled.own == MemberUpdate(NEW_ARTICLE, "canonical", 1.0) and settled.changed == ()


def test_a_later_report_keeps_the_canonical_and_only_its_own_kind_is_computed() -> None:
    members = [member(1, 1, 1000), member(2, 2, 900)]
    settled = settle(members, member(NEW_ARTICLE, 3, 950), relation)  # type: ignore[arg-type]
    assert settled.canonical_id == 1 and settled.first_reported == 1 * HOUR
    assert settled.own == MemberUpdate(NEW_ARTICLE, "report", relation(NEW_ARTICLE, 1)[1])
    assert settled.changed == ()


def test_a_full_report_after_a_teaser_takes_over_and_every_member_is_recomputed() -> None:
    teaser, stub = member(1, 1, 120), member(2, 2, 200)
    settled = settle([teaser, stub], member(NEW_ARTICLE, 3, 2000), relation)  # type: ignore[arg-type]
    assert settled.canonical_id == NEW_ARTICLE
    assert settled.first_reported == 1 * HOUR  # the first report stays the teaser's time
    assert settled.own == MemberUpdate(NEW_ARTICLE, "canonical", 1.0)
    assert {u.article_id for u in settled.changed} == {1, 2}
    assert all(u.kind == "report" and u.similarity == relation(u.article_id, NEW_ARTICLE)[1] for u in settled.changed)


def test_ties_go_to_the_first_seen_then_to_the_stored_article() -> None:
    earlier_seen = settle([member(5, 1, 800, seen=4)], member(NEW_ARTICLE, 1, 800, seen=2), relation)  # type: ignore[arg-type]
    assert earlier_seen.canonical_id == NEW_ARTICLE
    same = settle([member(5, 1, 800, seen=2)], member(NEW_ARTICLE, 1, 800, seen=2), relation)  # type: ignore[arg-type]
    assert same.canonical_id == 5  # the new article's id will be higher than every stored one


# -- a first source that cannot be faked (issue 18) ---------------------------------------------------


def test_a_date_within_the_feeds_polling_gap_and_margin_is_credible() -> None:
    seen, gap = 100 * HOUR, 2 * HOUR
    assert credible_time(seen - gap - CREDIBLE_MARGIN_S, seen, gap) == seen - gap - CREDIBLE_MARGIN_S  # just within
    assert credible_time(seen - 10, seen, 0.0) == seen - 10
    assert credible_time(seen + 60, seen, gap) == seen + 60  # (the future is clamped earlier, by the poller)


def test_a_date_earlier_than_the_gap_and_margin_counts_as_first_seen() -> None:
    seen, gap = 100 * HOUR, 2 * HOUR
    assert credible_time(seen - gap - CREDIBLE_MARGIN_S - 1, seen, gap) == seen
    assert credible_time(seen - 72 * HOUR, seen, gap) == seen
    assert credible_time(seen - 72 * HOUR, seen, None) == seen - 72 * HOUR  # nothing seen before: nothing to be first against


def test_a_member_whose_date_was_not_credible_is_first_only_from_its_first_sighting() -> None:
    honest = member(1, 10, 1000, seen=10.2)
    backdated = Member(2, -20 * HOUR, 11 * HOUR, 1000, reported_at=11 * HOUR)  # claims 30 hours earlier, seen after the honest one
    assert choose_canonical([honest, backdated]) is honest and choose_canonical([backdated, honest]) is honest
    settled = settle([honest], Member(NEW_ARTICLE, -20 * HOUR, 11 * HOUR, 1200, reported_at=11 * HOUR), relation)  # type: ignore[arg-type]
    assert settled.canonical_id == 1 and settled.first_reported == 10 * HOUR
    # seen first, it leads, from its first sighting (not its date); a later report cannot displace it
    alone = settle([], Member(NEW_ARTICLE, -20 * HOUR, 9 * HOUR, 1000, reported_at=9 * HOUR), relation)  # type: ignore[arg-type]
    assert alone.first_reported == 9 * HOUR
    first = settle([Member(3, -20 * HOUR, 9 * HOUR, 1000, reported_at=9 * HOUR)], member(NEW_ARTICLE, 10, 1000), relation)  # type: ignore[arg-type]
    assert first.canonical_id == 3 and first.first_reported == 9 * HOUR


def test_members_reported_at_the_same_sighting_go_by_their_dates() -> None:
    """A backlog seen in one poll: its reported times tie, and its own dates order it."""
    older = Member(7, 2 * HOUR, 50 * HOUR, 1000, reported_at=50 * HOUR)
    newer = Member(5, 4 * HOUR, 50 * HOUR, 1000, reported_at=50 * HOUR)
    assert choose_canonical([newer, older]) is older


# -- placements from the index ------------------------------------------------------------------------


def test_decide_returns_the_whole_placement() -> None:
    d = Deduplicator(DedupSettings())
    original = d.sign(ORIGINAL_TITLE, text(ORIGINAL))
    first = d.decide(original, T0, "Wire", T0, len(text(ORIGINAL)))
    assert first.story_id is None and first.settlement.canonical_id == NEW_ARTICLE and first.canonical(41) == 41
    d.add(41, 7, first)
    copy = d.decide(d.sign(COPY_TITLE, text(COPY)), T0 + timedelta(hours=1), "Reprinter", T0 + timedelta(hours=1), len(text(COPY)))
    assert (copy.story_id, copy.kind, copy.matched_article_id) == (7, "copy", 41)
    assert copy.canonical(42) == 41 and copy.settlement.own.kind == "copy" and copy.settlement.changed == ()
    assert copy.first_reported_at == T0


def test_the_canonical_rule_counts_members_that_left_the_window() -> None:
    """A story running past the window: its first, full report has left the index, yet it stays the
    canonical; and when a much longer report takes over, the member that left is recomputed too."""
    settings = DedupSettings(window_hours=48)
    d = Deduplicator(settings)
    full, rewrite = text(ORIGINAL), text(REWRITE)
    d.learn(1, 100, d.sign(ORIGINAL_TITLE, full, "Wire"), T0, "Wire", T0, len(full))
    d.learn(2, 100, d.sign(REWRITE_TITLE, rewrite, "Daily"), T0 + timedelta(hours=30), "Daily", T0 + timedelta(hours=30), len(rewrite))
    assert d.evict(T0 + timedelta(hours=1)) == 1 and d.signature_of(1) is None
    when = T0 + timedelta(hours=50)
    reprint = d.sign(REWRITE_TITLE, rewrite, "Reprinter")
    kept = d.decide(reprint, when, "Reprinter", when, len(rewrite))
    assert kept.story_id == 100 and kept.kind == "copy"
    assert kept.settlement.canonical_id == 1 and kept.settlement.changed == ()  # not article 2, the earliest still in the window
    assert kept.first_reported_at == T0
    longer = d.decide(reprint, when, "Reprinter", when, 10 * len(full))
    assert longer.settlement.canonical_id == NEW_ARTICLE
    assert {u.article_id for u in longer.settlement.changed} == {1, 2}


@pytest.mark.parametrize("restart", [False, True])
def test_a_restarted_index_places_like_the_live_one(restart: bool) -> None:
    """After a restart the members that had left the window come from storage (``retire``)."""
    settings = DedupSettings(window_hours=48)
    live = Deduplicator(settings)
    full, rewrite = text(ORIGINAL), text(REWRITE)
    stored = []
    for article_id, title, body, source, hours in ((1, ORIGINAL_TITLE, full, "Wire", 0), (2, REWRITE_TITLE, rewrite, "Daily", 30)):
        sig = live.sign(title, body, source)
        when = T0 + timedelta(hours=hours)
        live.learn(article_id, 100, sig, when, source, when, len(body))
        stored.append((100, article_id, when, when, len(body), live.encode(sig)))
    live.evict(T0 + timedelta(hours=1))
    index = live
    if restart:
        index = Deduplicator(settings)
        index.load_snapshot(live.snapshot())
        sig2 = index.decode(stored[1][5])
        index.learn(2, 100, sig2, stored[1][2], "Daily", stored[1][3], stored[1][4])
        index.retire([(story, article, published, seen, length, data) for story, article, published, seen, length, data in stored[:1]])
    when = T0 + timedelta(hours=50)
    placement = index.decide(index.sign(REWRITE_TITLE, rewrite, "Reprinter"), when, "Reprinter", when, 10 * len(full))
    assert placement.settlement.canonical_id == NEW_ARTICLE
    changed = {u.article_id: u.kind for u in placement.settlement.changed}
    assert changed == {1: "report", 2: "copy"}


def test_a_stored_story_takes_the_placement_as_it_is(server, routes, make_config) -> None:
    """Through a loopback feed: a teaser, then the full report that contains it. The full report
    becomes the canonical (its title is the story's), the teaser (the canonical until then) is
    recomputed relative to it, and the story was still first reported at the teaser's time."""
    teaser, full = ORIGINAL[0], text(ORIGINAL)
    items = "".join(
        f"<item><title>{title}</title><guid>{guid}</guid><pubDate>{format_datetime(T0 + timedelta(hours=h), usegmt=True)}</pubDate>"
        f"<description>{body}</description></item>"
        for guid, title, body, h in (("t", "Flooding in Port Elwyn", teaser, 1), ("f", ORIGINAL_TITLE, full, 2))
    )
    routes["/feed.xml"] = Response(200, f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{items}</channel></rss>'.encode(),
                                   {"Content-Type": "application/rss+xml"})
    agg = make_aggregator(make_config([{"url": server.url("/feed.xml"), "name": "Wire"}], extract={"fetch_pages": False}),
                          clock=lambda: T0 + timedelta(hours=3))
    try:
        asyncio.run(agg.poll_round(due_only=False))
        (story,) = agg.stories_between(T0, T0 + timedelta(days=1))
    finally:
        agg.close()
    by_title = {v.title: v for v in story.variants}
    assert story.title == ORIGINAL_TITLE and story.canonical_article_id == by_title[ORIGINAL_TITLE].article_id
    assert by_title[ORIGINAL_TITLE].kind == "canonical" and by_title[ORIGINAL_TITLE].similarity == 1.0
    assert by_title["Flooding in Port Elwyn"].kind == "report" and 0 < by_title["Flooding in Port Elwyn"].similarity < 1
    assert story.first_reported_at == T0 + timedelta(hours=1)
