"""Why two articles are or are not in one story. Pure: the join rule's own numbers for a pair,
recomputed on a ``Deduplicator`` holding the index as it stood just before the later of the two was
decided (the caller rebuilds it: ``cli/explain.py``).

The copy tier, the candidates and the decision are the rule's own functions (``Rule.containment``,
``Rule.is_copy``, ``Rule.best_copy``, ``Rule.candidates``, ``Rule.score``); the report tier's
per-story scores, part by part, are ``story_scores``' (``dedup/story_scores.py``), and every
explanation checks that the story it ranks first is the story the rule itself chose
(``Explanation.rule_agrees``). Why a story's canonical leads is ``dedup/canonical_why.py``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

# (why a story's canonical leads was explained here: tests/test_explain.py still imports it from here)
from .canonical_why import CanonicalMember as CanonicalMember
from .canonical_why import CanonicalWhy as CanonicalWhy
from .canonical_why import why_canonical as why_canonical
from .deduplicator import COPY_MIN_SHINGLES, Deduplicator
from .index import ts
from .render import _jsonable, _utc
from .rule import COPY_MIN_JACCARD, MARGIN_WEIGHT, MIN_SHARED_TERMS, RUNNER_FLOOR, Decision
from .signature import Signature
from .statistics import GAP_MIN_PAIRS, IDF_POWER, boilerplate_key, source_key
from .statistics import tf as log_tf
from .story_scores import MemberScore, StoryScore, _order, story_scores

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
