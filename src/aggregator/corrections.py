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

The process that owns the dedup index (under the storage's one-writer lock, ``factory.writer``)
applies a correction. Another process, while a daemon owns it, queues the correction instead
(``request_correction``: checked first, reading only, so a mistake is refused at once with the
message applying it would give); the owner applies the queue on a short tick
(``apply_pending_corrections``), each request through the same functions, and marks it done (in
the correction's own transaction) or failed with the one-line reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .dedup.canonical import Member, choose_canonical
from .errors import StorageError, UsageError
from .models import MemberKind
from .store import Correction, MemberFacts, Regrouped, StoreProtocol
from .store.interface import CorrectionRequest, CorrectionWriter

if TYPE_CHECKING:
    from .core import Aggregator
    from .dedup import Deduplicator
    from .library import Library

log = logging.getLogger(__name__)


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


def _members(store: StoreProtocol, story_ids: Sequence[int]) -> dict[int, list[MemberFacts]]:
    found: dict[int, list[MemberFacts]] = {s: [] for s in story_ids}
    for m in store.member_facts(story_ids):
        found[m.story_id].append(m)
    for s, members in found.items():
        if not members:
            raise UsageError(f"no story with id {s}")
    return found


def _split_members(store: StoreProtocol, story_id: int, ids: set[int]) -> list[MemberFacts]:
    """The members of the story to split, once the split asked for is known to be possible."""
    members = _members(store, [story_id])[story_id]
    strangers = sorted(ids - {m.article_id for m in members})
    if strangers:
        raise UsageError(f"article {', '.join(map(str, strangers))} is not in story {story_id} "
                         f"(its articles: {', '.join(str(m.article_id) for m in members)})")
    if not ids:
        raise UsageError("name the articles to move out of the story")
    if len(ids) == len(members):
        raise UsageError(f"that is every article of story {story_id}: name only those to move out")
    return members


def _merge_pair(store: StoreProtocol, story_id: int, other_id: int) -> dict[int, list[MemberFacts]]:
    if story_id == other_id:
        raise UsageError("give two different stories to merge")
    return _members(store, [story_id, other_id])


def _undo_target(store: StoreProtocol, correction_id: int) -> Correction:
    """The correction to undo, once nothing stands in the way (undone already, changed since)."""
    every = store.corrections()
    found = next((c for c in every if c.id == correction_id), None)
    if found is None:
        raise UsageError(f"no correction with id {correction_id} (`aggregator corrections` lists them)")
    if found.undone_at is not None:
        raise UsageError(f"correction {correction_id} was undone already")
    touched = {found.story_id, found.other_story_id}
    later = [c.id for c in every if c.id > found.id and c.undone_at is None and touched & {c.story_id, c.other_story_id}]
    if later:
        raise UsageError(f"correction {', '.join(map(str, later))} changed these stories since: undo {'it' if len(later) == 1 else 'them'} first")
    return found


def _writes(agg: Aggregator, request_id: int | None) -> CorrectionWriter:
    return agg.store if request_id is None else agg.store.correction_queue().answering(request_id)


def split_story(agg: Aggregator, story_id: int, article_ids: Sequence[int], request_id: int | None = None) -> Correction:
    """Move ``article_ids`` (members of the story) to a new story; later articles keep them apart.
    ``request_id``: the queued request this answers (marked done with it)."""
    with agg.ingest.lock:
        agg.ensure_index()
        ids = set(article_ids)
        members = _split_members(agg.store, story_id, ids)
        kept = regroup(story_id, [m for m in members if m.article_id not in ids], agg.dedup)
        split = regroup(None, [m for m in members if m.article_id in ids], agg.dedup)
        done = _writes(agg, request_id).apply_correction("split", story_id, None, sorted(ids), [kept, split], agg.clock())
        agg.dedup.move(done.article_ids, done.other_story_id)
        return done


def merge_stories(agg: Aggregator, story_id: int, other_id: int, request_id: int | None = None) -> Correction:
    """Move every member of ``other_id`` into ``story_id`` (the story kept); the other is left empty
    (listed nowhere; its id stays for the record and its undo)."""
    with agg.ingest.lock:
        agg.ensure_index()
        found = _merge_pair(agg.store, story_id, other_id)
        moved = [m.article_id for m in found[other_id]]
        kept = regroup(story_id, found[story_id] + found[other_id], agg.dedup)
        done = _writes(agg, request_id).apply_correction("merge", story_id, other_id, moved, [kept], agg.clock())
        agg.dedup.move(moved, story_id)
        return done


def undo(agg: Aggregator, correction_id: int, request_id: int | None = None) -> Correction:
    """Reverse a correction. A split: the new story's members (those moved, and any that joined it
    since) go back to the story split. A merge: the articles merged in go back to their story (those
    that joined since stay in the story kept). Canonicals are worked out again from the members."""
    with agg.ingest.lock:
        agg.ensure_index()
        found = _undo_target(agg.store, correction_id)
        members = _members(agg.store, [found.story_id])
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
        done = _writes(agg, request_id).undo_correction(correction_id, groups, agg.clock())
        for ids, target in moves:
            agg.dedup.move(ids, target)
        return done


# -- corrections asked for while another process owns the dedup index --------------------------------


def _named(value: int | None, what: str) -> int:
    if value is None:
        raise UsageError(f"the request names no {what}")
    return value


def check(store: StoreProtocol, asked: CorrectionRequest) -> None:
    """Refuse, reading only, what applying the correction now would refuse (``UsageError``, with
    the same message). It may still fail when applied: the stories can change in between."""
    if asked.kind == "split":
        _split_members(store, _named(asked.story_id, "story"), set(asked.article_ids))
    elif asked.kind == "merge":
        _merge_pair(store, _named(asked.story_id, "story"), _named(asked.other_story_id, "story to merge"))
    elif asked.kind == "undo":
        _undo_target(store, _named(asked.correction_id, "correction"))
    else:
        raise UsageError(f"no such correction as {asked.kind!r} (split, merge or undo)")


def apply(agg: Aggregator, asked: CorrectionRequest, request_id: int | None = None) -> Correction:
    """Make the correction asked for: ``split_story``, ``merge_stories`` or ``undo``."""
    if asked.kind == "split":
        return split_story(agg, _named(asked.story_id, "story"), asked.article_ids, request_id)
    if asked.kind == "merge":
        return merge_stories(agg, _named(asked.story_id, "story"), _named(asked.other_story_id, "story to merge"), request_id)
    if asked.kind == "undo":
        return undo(agg, _named(asked.correction_id, "correction"), request_id)
    raise UsageError(f"no such correction as {asked.kind!r} (split, merge or undo)")


def request_correction(lib: Library, asked: CorrectionRequest) -> CorrectionRequest:
    """Queue a correction for the process that owns the dedup index, once ``check`` passes."""
    check(lib.store, asked)
    return lib.store.correction_queue().add(asked, lib.clock())


def apply_pending_corrections(agg: Aggregator) -> list[CorrectionRequest]:
    """Apply the queued requests, oldest first, each marked done (with the correction, in one
    transaction) or failed with its reason; returns them as finished. Called by the owner of the
    dedup index: the daemon's tick, a correction command that owns the storage. A database error
    stops here (``StorageError``): the requests not finished stay queued for the next call."""
    queue = agg.store.correction_queue()
    finished = []
    for asked in queue.pending():
        try:
            c = apply(agg, asked, asked.id)
            made = f"undo of correction {c.id}" if asked.kind == "undo" else f"{c.kind} of story {c.story_id} (correction {c.id})"
            log.info("correction request %d applied: %s", asked.id, made)
        except StorageError:
            raise
        except UsageError as exc:
            log.warning("correction request %d failed: %s", asked.id, exc)
            queue.fail(asked.id, str(exc), agg.clock())
        except Exception as exc:  # a defect must not wedge the queue: this request fails, the next ones are tried
            log.exception("correction request %d failed unexpectedly", asked.id)
            queue.fail(asked.id, f"unexpected error: {type(exc).__name__}: {exc}", agg.clock())
        done = queue.get(asked.id)
        if done is not None:
            finished.append(done)
    return finished
