"""The reader's corrections of the clustering: split a story, merge two, undo either.

A correction moves story members in the database (one transaction, recorded in ``corrections``
with a line in each story's timeline) and in the dedup index, under the ingest lock, so the
articles that come later see the corrected stories: the halves of a split story are two stories
to them (an article close to both joins one of them: the rule places an article in one story and
never joins two), and an article close to a merged-in story finds it in the story kept. A
restart rebuilds the index from the stored memberships, so the constraints last. Each story's
canonical is worked out again with the canonical rule (``dedup.canonical.choose_canonical``);
members keep their kind and similarity where their canonical stays, and are compared with the new
one where it changes.

Writes happen under the storage's one-writer lock (``factory.writer``): the commands refuse
while a daemon runs, whose index lives in its memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .dedup.canonical import Member, choose_canonical
from .errors import UsageError
from .models import MemberKind
from .store import Correction, MemberFacts, Regrouped

if TYPE_CHECKING:
    from .core import Aggregator
    from .dedup import Deduplicator


def _seconds(when: datetime) -> float:
    return when.timestamp()


def regroup(story_id: int | None, members: Sequence[MemberFacts], dedup: Deduplicator) -> Regrouped:
    """A story made of ``members``: its canonical by the canonical rule, its first report, and each
    member's kind and similarity to the canonical (kept where it was relative to the same one)."""
    rule_members = [Member(m.article_id, _seconds(m.published_at), _seconds(m.first_seen_at), m.text_length,
                           None if m.reported_at is None else _seconds(m.reported_at)) for m in members]
    canonical = choose_canonical(rule_members).article_id
    first = min(m.reported for m in rule_members)
    signature = {m.article_id: m.signature for m in members}
    out: list[tuple[int, MemberKind, float]] = []
    for m in members:
        if m.article_id == canonical:
            out.append((m.article_id, "canonical", 1.0))
        elif m.canonical_id == canonical and m.kind != "canonical":
            out.append((m.article_id, m.kind, m.similarity))
        else:
            mine, theirs = signature[m.article_id], signature[canonical]
            if mine is None or theirs is None:  # (every stored article has a signature; this keeps the move possible regardless)
                out.append((m.article_id, "report", 0.0))
                continue
            kind, similarity = dedup.relation(dedup.decode(mine), dedup.decode(theirs))
            out.append((m.article_id, kind, round(similarity, 4)))
    return Regrouped(story_id, canonical, datetime.fromtimestamp(first, timezone.utc), tuple(out))


def _members(agg: Aggregator, story_ids: Sequence[int]) -> dict[int, list[MemberFacts]]:
    found: dict[int, list[MemberFacts]] = {s: [] for s in story_ids}
    for m in agg.store.member_facts(story_ids):
        found[m.story_id].append(m)
    for s, members in found.items():
        if not members:
            raise UsageError(f"no story with id {s}")
    return found


def split_story(agg: Aggregator, story_id: int, article_ids: Sequence[int]) -> Correction:
    """Move ``article_ids`` (members of the story) to a new story; later articles keep them apart."""
    with agg.ingest.lock:
        agg.ensure_index()
        members = _members(agg, [story_id])[story_id]
        ids = set(article_ids)
        strangers = sorted(ids - {m.article_id for m in members})
        if strangers:
            raise UsageError(f"article {', '.join(map(str, strangers))} is not in story {story_id} "
                             f"(its articles: {', '.join(str(m.article_id) for m in members)})")
        if not ids:
            raise UsageError("name the articles to move out of the story")
        if len(ids) == len(members):
            raise UsageError(f"that is every article of story {story_id}: name only those to move out")
        kept = regroup(story_id, [m for m in members if m.article_id not in ids], agg.dedup)
        split = regroup(None, [m for m in members if m.article_id in ids], agg.dedup)
        done = agg.store.apply_correction("split", story_id, None, sorted(ids), [kept, split], agg.clock())
        agg.dedup.move(done.article_ids, done.other_story_id)
        return done


def merge_stories(agg: Aggregator, story_id: int, other_id: int) -> Correction:
    """Move every member of ``other_id`` into ``story_id`` (the story kept); the other is left empty
    (listed nowhere; its id stays for the record and its undo)."""
    if story_id == other_id:
        raise UsageError("give two different stories to merge")
    with agg.ingest.lock:
        agg.ensure_index()
        found = _members(agg, [story_id, other_id])
        moved = [m.article_id for m in found[other_id]]
        kept = regroup(story_id, found[story_id] + found[other_id], agg.dedup)
        done = agg.store.apply_correction("merge", story_id, other_id, moved, [kept], agg.clock())
        agg.dedup.move(moved, story_id)
        return done


def undo(agg: Aggregator, correction_id: int) -> Correction:
    """Reverse a correction. A split: the new story's members (those moved, and any that joined it
    since) go back to the story split. A merge: the articles merged in go back to their story (those
    that joined since stay in the story kept). Canonicals are worked out again from the members."""
    with agg.ingest.lock:
        agg.ensure_index()
        every = agg.store.corrections()
        found = next((c for c in every if c.id == correction_id), None)
        if found is None:
            raise UsageError(f"no correction with id {correction_id} (`aggregator corrections` lists them)")
        if found.undone_at is not None:
            raise UsageError(f"correction {correction_id} was undone already")
        touched = {found.story_id, found.other_story_id}
        later = [c.id for c in every if c.id > found.id and c.undone_at is None and touched & {c.story_id, c.other_story_id}]
        if later:
            raise UsageError(f"correction {', '.join(map(str, later))} changed these stories since: undo {'it' if len(later) == 1 else 'them'} first")
        members = _members(agg, [found.story_id])
        if found.kind == "split":
            others = agg.store.member_facts([found.other_story_id])
            groups = [regroup(found.story_id, members[found.story_id] + others, agg.dedup)]
            moves = [([m.article_id for m in others], found.story_id)]
        else:
            back = set(found.article_ids)
            going = [m for m in members[found.story_id] if m.article_id in back]
            staying = [m for m in members[found.story_id] if m.article_id not in back]
            if not going or not staying:
                raise UsageError(f"correction {correction_id} cannot be undone: its stories' members have changed since")
            groups = [regroup(found.story_id, staying, agg.dedup), regroup(found.other_story_id, going, agg.dedup)]
            moves = [([m.article_id for m in going], found.other_story_id)]
        done = agg.store.undo_correction(correction_id, groups, agg.clock())
        for ids, target in moves:
            agg.dedup.move(ids, target)
        return done
