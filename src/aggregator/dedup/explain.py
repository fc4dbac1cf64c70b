"""Why two articles are or are not in one story, and why a story's canonical leads. Pure: the join
rule's own numbers for a pair, recomputed on a ``Deduplicator`` holding the index as it stood just
before the later of the two was decided (the caller rebuilds it: ``cli/explain.py``), and the
canonical rule's inputs for a story's members.

The copy tier, the candidates, the decision and the canonical choice are the rule's own functions
(``Rule.containment``, ``Rule.is_copy``, ``Rule.best_copy``, ``Rule.candidates``, ``Rule.score``,
``choose_canonical``). The report tier's per-story scores are not returned by ``Rule.score_stories``
(it keeps them in locals), so ``story_scores`` below repeats its arithmetic with each part kept
apart (similarity, crowding, decay, the same-outlet penalty), and every explanation checks that
the story it ranks first is the story the rule itself chose (``Explanation.rule_agrees``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .canonical import FULL_REPORT_FRACTION, choose_canonical
from .deduplicator import COPY_MIN_SHINGLES, Deduplicator
from .index import ts
from .rule import (
    COPY_MIN_JACCARD,
    CROWDING_WEIGHT,
    MARGIN_WEIGHT,
    MEMBER_CAP,
    MIN_SHARED_TERMS,
    RUNNER_FLOOR,
    SAME_SOURCE_PENALTY,
    Decision,
)
from .signature import Signature
from .statistics import GAP_MIN_PAIRS, IDF_POWER, boilerplate_key, source_key
from .statistics import tf as log_tf
from .tokens import MAX_TERMS

SHOWN_STORIES = 3  # candidate stories listed, best first


@dataclass(frozen=True)
class ArticleFacts:
    """One stored article as the explanation needs it: where it is stored (story, kind and
    similarity relative to the story's canonical) and its signature as it was signed (None: sign
    ``title`` and ``text`` now, with the statistics of the rebuilt index)."""

    article_id: int
    title: str
    source: str | None
    published: datetime
    first_seen: datetime
    text_length: int
    story_id: int | None = None
    kind: str | None = None
    similarity: float | None = None
    signature: Signature | None = field(default=None, repr=False, compare=False)
    text: str = field(default="", repr=False, compare=False)


@dataclass(frozen=True)
class CopyTier:
    """Tier 1 between the pair, and what tier 1 decided for the later article."""

    jaccard: float  # estimated (MinHash) Jaccard of the two shingle sets
    containment: float  # estimated share of the smaller set found in the other
    jaccard_threshold: float  # settings copy_jaccard
    containment_threshold: float  # settings copy_containment (with Jaccard >= COPY_MIN_JACCARD)
    min_jaccard: float
    is_copy: bool  # the pair passes the copy rule
    shared_band: bool  # they share an LSH band: the copy tier compares them at all
    shingles: tuple[int, int]  # shingles hashed into each MinHash (earlier, later)
    body_shingles: tuple[int, int]  # distinct body shingles of each
    boilerplate: int  # the later article's body shingles dropped as its outlet's boilerplate when it was signed
    best_copy_id: int | None  # the article the later one copies (tier 1 decided), if any
    best_copy_jaccard: float
    best_copy_story: int | None


@dataclass(frozen=True)
class StoryScore:
    """One candidate story's score for the later article (``Rule.score_stories``, part by part;
    the means are weighted by each member's share of a full term vector, as the rule's are)."""

    story_id: int
    score: float  # similarity - crowding - decay, averaged; less the penalty
    similarity: float  # mean cosine to the members scored
    crowding: float  # mean of ½ · each member's crowding
    decay: float  # mean of decay per day × days apart
    same_outlet_penalty: float  # SAME_SOURCE_PENALTY when a member is by the same outlet, else 0
    members: int  # members scored (in the window, at most MEMBER_CAP)
    shared_terms: int  # the most terms one member shares with the article
    candidate: bool  # found by the rare-term index (False: scored here only to explain)


@dataclass(frozen=True)
class MemberScore:
    """The earlier article as a member of its story, in the later article's scoring."""

    similarity: float  # cosine, with the later article counted in the document frequencies
    crowding: float  # ½ · mean of its 5 best similarities so far
    decay: float  # decay per day × days apart
    adjusted: float  # similarity - crowding - decay
    weight: float  # distinct terms ÷ 80 (its weight in its story's mean)


@dataclass(frozen=True)
class ReportTier:
    """Tier 2: the later article against the candidate stories, and against the earlier one's."""

    cosine: float  # the pair's cosine, as the rule computes it
    member: MemberScore | None  # None: the earlier article was not scored (outside the window, or beyond MEMBER_CAP)
    story: StoryScore | None  # the earlier article's story (None: no member of it in the window)
    ranked: tuple[StoryScore, ...]  # the best candidate stories, best first (at most SHOWN_STORIES)
    best: float | None  # s1
    runner_up: float | None  # s2 (None: one candidate story; the rule takes RUNNER_FLOOR)
    value: float | None  # s1 + MARGIN_WEIGHT · (s1 - max(s2, RUNNER_FLOOR))
    threshold: float  # settings report_threshold
    min_shared_terms: int
    joins: int | None  # the story tier 2 picks (None: none passes)


@dataclass(frozen=True)
class Explanation:
    """Why ``earlier`` and ``later`` (by article id: the order they were decided) are or are not in one story."""

    earlier: ArticleFacts
    later: ArticleFacts
    basis: str  # how the index was rebuilt
    hours_apart: float
    window_hours: float
    in_window: bool
    decay_per_day: float
    decay_learned: bool  # learned from the stream (else the configured value)
    same_outlet: bool
    copy: CopyTier
    report: ReportTier
    decided_story: int | None  # the rule's decision for the later article (None: a new story)
    decided_kind: str
    earlier_story_then: int | None  # the earlier article's story when the later one was decided
    predicted_same: bool  # the rule puts them in one story
    stored_same: bool  # they are in one story in the database
    rule_agrees: bool  # report tier: the breakdown ranks first the story the rule chose
    verdict: str

    @property
    def agrees_with_store(self) -> bool:
        return self.predicted_same == self.stored_same

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("earlier", "later"):
            data[key].pop("signature", None)
            data[key].pop("text", None)
        data["agrees_with_store"] = self.agrees_with_store
        shaped: dict[str, Any] = _jsonable(data)
        return shaped

    def lines(self) -> list[str]:
        a, b, c, r = self.earlier, self.later, self.copy, self.report
        out = [_article_line(a), _article_line(b)]
        if self.stored_same:
            out.append(f"stored: one story ({a.story_id})")
        else:
            out.append(f"stored: different stories ({a.story_id} and {b.story_id})")
        out.append(f"index: {self.basis}")
        decay = self.decay_per_day * self.hours_apart / 24
        learned = "learned" if self.decay_learned else "configured, not learned yet"
        out.append(f"time: {self.hours_apart:.1f} h apart (window {self.window_hours:g} h: {'inside' if self.in_window else 'OUTSIDE, never compared'}); "
                   f"decay {self.decay_per_day:.3f}/day ({learned}) × {self.hours_apart / 24:.2f} days = {decay:.3f}")
        # copy tier
        jv = f"estimated Jaccard {c.jaccard:.2f} {'≥' if c.jaccard >= c.jaccard_threshold else '<'} {c.jaccard_threshold:g}"
        cv = (f"containment {c.containment:.2f} {'≥' if c.containment >= c.containment_threshold else '<'} {c.containment_threshold:g}"
              f" (with Jaccard {'≥' if c.jaccard >= c.min_jaccard else '<'} {c.min_jaccard:g})")
        out.append(f"copy tier: {jv}, {cv} → {'a copy' if c.is_copy else 'not a copy'}"
                   f"{'' if c.shared_band else ' (no shared LSH band: not a copy candidate)'}")
        out.append(f"  shingles hashed: #{a.article_id} {c.shingles[0]} of {c.body_shingles[0]} in its body, "
                   f"#{b.article_id} {c.shingles[1]} of {c.body_shingles[1]} ({c.boilerplate} dropped as its outlet's boilerplate)")
        if c.best_copy_id is not None:
            out.append(f"  #{b.article_id} copies #{c.best_copy_id} (Jaccard {c.best_copy_jaccard:.2f}, story {c.best_copy_story}): the copy tier decided")
        # report tier
        out.append(f"report tier: cosine {r.cosine:.2f}")
        if r.member is not None:
            m = r.member
            out.append(f"  #{a.article_id} as a member: {m.similarity:.2f} − crowding {m.crowding:.2f} − decay {m.decay:.3f} = {m.adjusted:.2f}"
                       f" (weight {m.weight:.2f})")
        for s in ([r.story] if r.story is not None and not r.story.candidate else []) + list(r.ranked):
            mark = []
            if s.story_id == self.earlier_story_then:
                mark.append(f"#{a.article_id}'s story")
            if not s.candidate:
                mark.append("not a candidate: no shared rare terms")
            note = f" ({', '.join(mark)})" if mark else ""
            out.append(f"  story {s.story_id}{note}: {s.score:.3f} = similarity {s.similarity:.2f} − crowding {s.crowding:.2f} − decay "
                       f"{s.decay:.3f} − same outlet {s.same_outlet_penalty:g} over {s.members} member(s); "
                       f"shares {s.shared_terms} terms (≥ {r.min_shared_terms} needed)")
        if r.value is not None and r.best is not None:
            s2 = "none" if r.runner_up is None else f"{r.runner_up:.3f}"
            out.append(f"  rule: s1 + (s1 − max(s2, {RUNNER_FLOOR:g})) = {r.best:.3f} + ({r.best:.3f} − max({s2}, {RUNNER_FLOOR:g})) = "
                       f"{r.value:.3f} {'≥' if r.value >= r.threshold else '<'} {r.threshold:g} → "
                       + (f"joins story {r.joins}" if r.joins is not None else "no story passes"))
        else:
            out.append("  rule: no candidate story")
        own = r.story
        if own is not None and own.same_outlet_penalty and r.joins != self.earlier_story_then and r.best is not None:
            # what the penalty changed: the earlier article's story without it, against the others
            rest = [x.score for x in r.ranked if x.story_id != own.story_id]
            unpenalised = own.score + own.same_outlet_penalty
            top, second = (unpenalised, rest[0] if rest else None) if not rest or unpenalised >= rest[0] else (rest[0], unpenalised)
            value = top + MARGIN_WEIGHT * (top - max(RUNNER_FLOOR if second is None else second, RUNNER_FLOOR))
            wins = unpenalised >= (rest[0] if rest else -np.inf) and value >= r.threshold
            out.append(f"  without the same-outlet penalty: story {own.story_id} {unpenalised:.3f}, rule value {value:.3f} → "
                       + (f"it would have joined story {own.story_id}" if wins else "still no join"))
        decided = "a new story" if self.decided_story is None else f"story {self.decided_story} as a {self.decided_kind}"
        out.append(f"decision for #{b.article_id}: {decided}")
        if not self.rule_agrees:
            out.append("  note: this breakdown ranks another story first than the rule did (explain.py has drifted from rule.py)")
        if not self.agrees_with_store:
            out.append("  note: the stored stories differ from this recomputation (an undated batch's refinement, "
                       "or a rebuilt index that is not the one of the time)")
        out.append(f"verdict: {self.verdict}")
        return out


def _article_line(a: ArticleFacts) -> str:
    kind = f" as {a.kind}" + (f" {a.similarity:.2f}" if a.similarity is not None and a.kind != "canonical" else "") if a.kind else ""
    return (f"#{a.article_id} {a.title!r} ({a.source or 'unknown outlet'}, published {_utc(a.published)}, "
            f"first seen {_utc(a.first_seen)}, {a.text_length} chars): story {a.story_id}{kind}")


def _utc(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


# -- the report tier, part by part ------------------------------------------------------------------


def story_scores(dedup: Deduplicator, sig: Signature, published: datetime, source: str | None,
                 stories: Sequence[int], candidates: frozenset[int]) -> tuple[list[StoryScore], dict[int, MemberScore]]:
    """``Rule.score_stories``' arithmetic for ``stories``, each part kept: per story its score and
    parts, and per member scored its own (by article id). Changes nothing.

    (What to refactor: ``score_stories`` could return these arrays, ``story_scores`` would then be
    a view of them and this copy would go.)"""
    rule, window, stats = dedup.rule, dedup.window, dedup.stats
    rows = window.rows
    t = ts(published)
    key = source_key(source)
    query_w = log_tf(sig.counts) * stats.idf(sig.terms, np.ones(len(sig.terms))) ** IDF_POWER
    query_w = query_w / (float(np.sqrt(query_w @ query_w)) or 1.0)
    scores: list[StoryScore] = []
    members: dict[int, MemberScore] = {}
    for story_id in stories:
        group = window.stories.get(story_id, [])
        if len(group) > MEMBER_CAP:
            group = group[:4] + group[-(MEMBER_CAP - 4):]
        member_rows = np.array(group, dtype=np.int64)
        if len(member_rows):
            member_rows = member_rows[window.in_window(t, rows.t[member_rows])]
        if not len(member_rows):
            continue
        terms, tf = rows.terms[member_rows], rows.tf[member_rows]
        qvals, extra = rule._query_lookup(sig.terms, query_w, terms)
        w = stats.idf(terms, extra) ** IDF_POWER * tf
        sims = (w * qvals).sum(axis=1) / np.maximum(np.sqrt((w * w).sum(axis=1)), 1e-12)
        decay = stats.decay_per_day * np.abs(t - rows.t[member_rows]) / 86400.0
        crowding = CROWDING_WEIGHT * 0.5 * rows.crowd[member_rows].mean(axis=1)
        adjusted = sims - crowding - decay
        evidence = np.count_nonzero(tf, axis=1) / MAX_TERMS
        total = max(float(evidence.sum()), 1e-9)
        penalty = SAME_SOURCE_PENALTY if key and bool((rows.source[member_rows] == key).any()) else 0.0
        scores.append(StoryScore(
            story_id=int(story_id), score=float((adjusted * evidence).sum() / total) - penalty,
            similarity=float((sims * evidence).sum() / total), crowding=float((crowding * evidence).sum() / total),
            decay=float((decay * evidence).sum() / total), same_outlet_penalty=penalty, members=len(member_rows),
            shared_terms=int(np.count_nonzero(qvals > 0, axis=1).max()), candidate=int(story_id) in candidates,
        ))
        for i, row in enumerate(member_rows.tolist()):
            members[int(rows.article[row])] = MemberScore(float(sims[i]), float(crowding[i]), float(decay[i]), float(adjusted[i]),
                                                          float(evidence[i]))
    return scores, members


def _order(scores: list[StoryScore]) -> list[StoryScore]:
    """Best first; ties to the story listed first (``scores`` in the order of the rule's candidate
    rows: that is how the rule breaks them)."""
    return sorted(scores, key=lambda s: -s.score)


# -- a pair ---------------------------------------------------------------------------------------


def explain_pair(dedup: Deduplicator, first: ArticleFacts, second: ArticleFacts, basis: str = "") -> Explanation:
    """Why two articles are or are not in one story. ``dedup`` holds the index as it stood just
    before the later of the two (the higher id: ids follow the order decided) was decided. Reads
    ``dedup``; changes nothing."""
    a, b = (first, second) if first.article_id < second.article_id else (second, first)
    settings, rule, window = dedup.settings, dedup.rule, dedup.window
    sig_a = a.signature if a.signature is not None else dedup.sign(a.title, a.text, a.source)
    sig_b = b.signature if b.signature is not None else dedup.sign(b.title, b.text, b.source)
    t_a, t_b = ts(a.published), ts(b.published)
    hours = abs(t_b - t_a) / 3600.0
    in_window = bool(window.in_window(t_b, np.array([t_a]))[0])

    # Tier 1: the pair, and what the copy tier found for the later article among the whole window.
    j, contained = rule.containment(sig_b, sig_a)
    is_copy = bool(rule.is_copy(np.array(j), np.array(contained)))
    bands_b = window.band_keys(sig_b.minhash)
    shared_band = bool((window.band_keys(sig_a.minhash) == bands_b).any())
    salt, limit = boilerplate_key(source_key(b.source))
    body = sig_b.shingle_hashes
    dropped = int(np.count_nonzero(dedup.stats.seen(body, salt) >= limit)) if len(body) else 0
    if len(body) - dropped < COPY_MIN_SHINGLES:
        dropped = 0  # title and body were hashed instead (a short text)
    copy_row, copy_j = rule.best_copy(sig_b, t_b, bands_b)
    rows = window.rows
    copy = CopyTier(
        jaccard=j, containment=contained, jaccard_threshold=settings.copy_jaccard, containment_threshold=settings.copy_containment,
        min_jaccard=COPY_MIN_JACCARD, is_copy=is_copy, shared_band=shared_band,
        shingles=(int(sig_a.shingles), int(sig_b.shingles)), body_shingles=(len(sig_a.shingle_hashes), len(sig_b.shingle_hashes)),
        boilerplate=dropped,
        best_copy_id=None if copy_row is None else int(rows.article[copy_row]), best_copy_jaccard=copy_j,
        best_copy_story=None if copy_row is None else int(rows.story[copy_row]),
    )

    # The rule's own decision.
    decision: Decision = rule.score(sig_b, b.published, source_key(b.source)).decision
    row_a = window.row_of.get(a.article_id)
    story_a = int(rows.story[row_a]) if row_a is not None else a.story_id

    # Tier 2, part by part: the candidate stories and the earlier article's.
    candidate_rows = rule.candidates(sig_b.keys, t_b, own_terms=sig_b.terms)
    names = list(dict.fromkeys(rows.story[candidate_rows].tolist()))
    extra = [story_a] if story_a is not None and story_a not in names and story_a in window.stories else []
    scores, members = story_scores(dedup, sig_b, b.published, b.source, names + extra, frozenset(names))
    ranked = _order([s for s in scores if s.candidate])
    story_score = next((s for s in scores if s.story_id == story_a), None)
    best = ranked[0].score if ranked else None
    runner = ranked[1].score if len(ranked) > 1 else None
    value = None if best is None else best + MARGIN_WEIGHT * (best - max(RUNNER_FLOOR if runner is None else runner, RUNNER_FLOOR))
    joins = ranked[0].story_id if value is not None and value >= settings.report_threshold and ranked[0].shared_terms >= MIN_SHARED_TERMS else None
    member = members.get(a.article_id)
    report = ReportTier(
        cosine=member.similarity if member is not None else max(rule.cosine(sig_a, sig_b), 0.0), member=member, story=story_score,
        ranked=tuple(ranked[:SHOWN_STORIES]), best=best, runner_up=runner, value=value, threshold=settings.report_threshold,
        min_shared_terms=MIN_SHARED_TERMS, joins=joins,
    )
    # The rule's own report-tier decision (whatever tier 1 found), against the breakdown's.
    query_w = log_tf(sig_b.counts) * dedup.stats.idf(sig_b.terms, np.ones(len(sig_b.terms))) ** IDF_POWER
    query_w = query_w / (float(np.sqrt(query_w @ query_w)) or 1.0)
    own_report = rule.score_stories(sig_b, query_w, candidate_rows, t_b, source_key(b.source))[0]
    rule_agrees = joins == (None if own_report is None else own_report.story_id)

    predicted = in_window and story_a is not None and decision.story_id == story_a
    stored = a.story_id is not None and a.story_id == b.story_id
    verdict = _verdict(a, b, copy, report, decision, story_a, in_window, predicted)
    return Explanation(
        earlier=a, later=b, basis=basis, hours_apart=hours, window_hours=settings.window_hours, in_window=in_window,
        decay_per_day=dedup.decay_per_day, decay_learned=float(dedup.stats.gaps.sum()) >= GAP_MIN_PAIRS,
        same_outlet=bool(a.source) and a.source == b.source, copy=copy, report=report,
        decided_story=decision.story_id, decided_kind=decision.kind, earlier_story_then=story_a,
        predicted_same=predicted, stored_same=stored, rule_agrees=rule_agrees, verdict=verdict,
    )


def _verdict(a: ArticleFacts, b: ArticleFacts, c: CopyTier, r: ReportTier, decision: Decision, story_a: int | None,
             in_window: bool, same: bool) -> str:
    """One line: the tier that decided, its number against its threshold, and the outcome."""
    outcome = "same story" if same else "not the same story"
    if not in_window:
        return f"{outcome}: published {abs(ts(b.published) - ts(a.published)) / 3600:.0f} h apart, beyond the window: never compared"
    if decision.kind == "copy":
        if c.best_copy_id == a.article_id:
            how = (f"estimated Jaccard {c.jaccard:.2f} ≥ {c.jaccard_threshold:g}" if c.jaccard >= c.jaccard_threshold
                   else f"containment {c.containment:.2f} ≥ {c.containment_threshold:g}")
            return f"copy tier: {how} → {outcome} (#{b.article_id} copies #{a.article_id})"
        where = "a member of the same story" if same else f"in story {c.best_copy_story}"
        return (f"copy tier: #{b.article_id} copies #{c.best_copy_id} (Jaccard {c.best_copy_jaccard:.2f} ≥ {c.jaccard_threshold:g}), "
                f"{where} → {outcome}")
    copy_note = f"not a copy (Jaccard {c.jaccard:.2f} < {c.jaccard_threshold:g})"
    s = r.story
    if same and r.value is not None:
        return f"{copy_note}; report tier: story {story_a} scores {r.best:.3f}, rule value {r.value:.3f} ≥ {r.threshold:g} → {outcome}"
    mine = "no member of it scored" if s is None else f"story {story_a} scores {s.score:.3f}" + (
        f" (incl. same-outlet penalty {s.same_outlet_penalty:g})" if s.same_outlet_penalty else "")
    if s is not None and not s.candidate:
        mine += ", not even a candidate"
    if decision.story_id is None:
        elsewhere = "no story passes: a new story"
        if r.value is not None:
            elsewhere = f"best {r.best:.3f}, rule value {r.value:.3f} < {r.threshold:g}" if r.value < r.threshold else \
                f"best story shares fewer than {r.min_shared_terms} terms" if r.ranked and r.ranked[0].shared_terms < r.min_shared_terms else elsewhere
            elsewhere += ": a new story"
    else:
        elsewhere = f"story {decision.story_id} won ({r.best:.3f}, rule value {r.value:.3f} ≥ {r.threshold:g})" if r.best is not None and r.value is not None \
            else f"joined story {decision.story_id}"
    return f"{copy_note}; report tier: {mine}; {elsewhere} → {outcome}"


# -- the canonical ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanonicalMember:
    """A story member with the canonical rule's inputs (``reported_at``: its first sighting where its
    date was not credible, else None: see ``canonical.credible_time``)."""

    article_id: int
    source: str
    title: str
    published_at: datetime
    first_seen_at: datetime
    text_length: int
    reported_at: datetime | None = None
    full: bool = False  # text at least FULL_REPORT_FRACTION of the longest
    note: str = ""  # why it is or is not the canonical


@dataclass(frozen=True)
class CanonicalWhy:
    """Why a story's canonical is its canonical (``choose_canonical`` over its stored members)."""

    story_id: int
    stored_canonical_id: int
    chosen_id: int  # what ``choose_canonical`` chooses now, from the stored members
    longest: int
    full_length: float  # FULL_REPORT_FRACTION of the longest: the least text of a full report
    reason: str
    members: tuple[CanonicalMember, ...]

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(asdict(self))
        return data

    def lines(self) -> list[str]:
        out = [f"canonical: #{self.stored_canonical_id}, {self.reason}",
               f"a full report has at least {FULL_REPORT_FRACTION:g} × the longest text ({self.longest} chars) = {self.full_length:g} chars"]
        if self.chosen_id != self.stored_canonical_id:
            out.append(f"note: the rule now chooses #{self.chosen_id} from the stored members (the stored choice was made on the "
                       "members the index knew when the last one joined, or by an earlier version of the rule)")
        for m in self.members:
            mark = "*" if m.article_id == self.stored_canonical_id else " "
            reported = "" if m.reported_at is None else f", counts as reported {_utc(m.reported_at)} (its date is not credible)"
            out.append(f"{mark} #{m.article_id} {m.source}: {m.text_length} chars ({'full' if m.full else 'teaser'}), published "
                       f"{_utc(m.published_at)}, first seen {_utc(m.first_seen_at)}{reported}: {m.note}")
        return out


_KEY_PARTS = ("reported", "published", "first seen", "id")


def _canonical_key(m: CanonicalMember) -> tuple[float, float, float, int]:
    """What ``choose_canonical`` orders full reports by: reported time, then published, first seen, id."""
    reported = m.published_at if m.reported_at is None else m.reported_at
    return ts(reported), ts(m.published_at), ts(m.first_seen_at), m.article_id


def why_canonical(story_id: int, stored_canonical_id: int, members: Sequence[CanonicalMember]) -> CanonicalWhy:
    """Each member with the canonical rule's inputs and why it leads or not. ``choose_canonical``
    decides; the reason names the part of the rule that did (the only full report, or the first
    reported full report, and which tie-break if the times tie)."""
    chosen = choose_canonical(members)
    longest = max(m.text_length for m in members)
    half = FULL_REPORT_FRACTION * longest
    full = [m for m in members if m.text_length >= half]
    key = _canonical_key(chosen)

    def decided_by(m: CanonicalMember) -> str:
        """The first part of the order in which ``m`` comes after the canonical."""
        return next(name for name, mine, theirs in zip(_KEY_PARTS, key, _canonical_key(m), strict=True) if mine != theirs)

    def note(m: CanonicalMember) -> str:
        if m.article_id == chosen.article_id:
            return "the canonical"
        if m.text_length < half:
            return f"a teaser ({m.text_length} < {half:g} chars): never leads"
        if _canonical_key(m) < key:
            return "earlier by the rule's order, yet not chosen: canonical.py has a rule this explanation does not know"
        part = decided_by(m)
        later = "published" if m.reported_at is None and chosen.reported_at is None else "reported"
        return {"reported": f"a full report, {later} later", "published": "reported at the same time, published later",
                "first seen": "same times, first seen later", "id": "same times, higher id"}[part]

    others = [m for m in full if m.article_id != chosen.article_id]
    teasers_before = sum(1 for m in members if m.text_length < half and _canonical_key(m) < key)
    skipped = f"; {teasers_before} earlier teaser(s) never lead" if teasers_before else ""
    if not others:
        reason = f"the only full report{skipped}"
    else:
        nearest = min(others, key=_canonical_key)
        part = decided_by(nearest) if _canonical_key(nearest) > key else None
        if part is None:
            reason = "chosen by canonical.choose_canonical over a full report earlier by its order (see canonical.py)"
        elif part == "reported":
            reason = f"the earliest of {len(full)} full reports{skipped}"
        else:
            reason = f"the earliest of {len(full)} full reports, tied on the times before {part}: {part} decides{skipped}"
    if chosen.reported_at is None and any(m.reported_at is not None and m.published_at < chosen.published_at for m in full):
        reason += " (an earlier-dated full report's date is not credible: it counts from its first sighting)"
    noted = tuple(CanonicalMember(m.article_id, m.source, m.title, m.published_at, m.first_seen_at, m.text_length, m.reported_at,
                                  m.text_length >= half, note(m)) for m in members)
    return CanonicalWhy(story_id, stored_canonical_id, chosen.article_id, longest, half, reason, noted)
