"""``aggregator explain A B``: why two articles are or are not in one story, and the rendering of
``story ID --why``. Reads only: the config, the store (``factory.open_library``) and a dedup index
rebuilt in memory as it stood just before the later article was decided (``index_before``); it
takes no writer lock and saves nothing (``Ingest.ensure_index`` may save a snapshot, so it is not
used here)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import AggregatorError
from .app import ConfigOption, app, friendly, load, out, print_json

if TYPE_CHECKING:
    from ..config import DedupSettings
    from ..dedup import Deduplicator
    from ..dedup.explain import ArticleFacts
    from ..library import Library
    from ..models import Story
    from ..store import StoreProtocol
    from ..store.interface import StoredSignature

# Rebuilding the index of a decision made before the newest snapshot means replaying every article
# from the first (the store keeps only the newest snapshot); about 1,000 articles a second. Beyond
# this many, the snapshot's statistics stand in for those of the time (the basis line says so).
REPLAY_LIMIT = 20_000

ArticleId = Annotated[int, typer.Argument(metavar="ID", help="Article id, as `story ID --json` lists them (variants[].article_id).",
                                          show_default=False)]


@app.command()
@friendly
def explain(
    first: ArticleId,
    second: ArticleId,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Why two articles are or are not in one story: copy and report tier scores against their
    thresholds, time decay, same-outlet penalty, the runner-up story, and where they are stored."""
    from ..dedup.explain import explain_pair
    from .reading import library

    if first == second:
        raise AggregatorError("give two different article ids")
    cfg = load(config)
    with library(cfg) as lib:
        a, stored_a = article_facts(lib, first)
        b, stored_b = article_facts(lib, second)
        later = max(stored_a, stored_b, key=lambda s: s.article_id)
        dedup, basis = index_before(lib.store, cfg.settings.dedup, later)
    explanation = explain_pair(dedup, a, b, basis)
    if as_json:
        print_json(explanation.as_dict())
        return
    for line in explanation.lines():
        out().print(line, soft_wrap=True)


def article_facts(lib: Library, article_id: int) -> tuple[ArticleFacts, StoredSignature]:
    """A stored article's facts and stored signature; AggregatorError when there is no such article."""
    from ..dedup import Deduplicator
    from ..dedup.explain import ArticleFacts

    if not 1 <= article_id <= 2**63 - 1:
        raise AggregatorError(f"{article_id} is not an article id (a positive number, as `story ID --json` lists them)")
    stored = next(iter(lib.store.signatures(after=article_id - 1, up_to=article_id)), None)
    if stored is None or stored.article_id != article_id:
        raise AggregatorError(f"no article with id {article_id} (`story ID --json` lists a story's in variants[].article_id)")
    story = lib.store.load_stories([stored.story_id])
    variant = next((v for s in story for v in s.variants if v.article_id == article_id), None)
    return ArticleFacts(
        article_id=article_id, title=variant.title if variant else "", source=stored.source, published=stored.published_at,
        first_seen=stored.first_seen_at, text_length=stored.text_length, story_id=stored.story_id,
        kind=variant.kind if variant else None, similarity=variant.similarity if variant else None,
        signature=Deduplicator.decode(stored.data),
    ), stored


def index_before(store: StoreProtocol, settings: DedupSettings, later: StoredSignature,
                 replay_limit: int = REPLAY_LIMIT) -> tuple[Deduplicator, str]:
    """The dedup index as it stood just before ``later`` was decided, in memory, and how it was
    built. As a restart builds it (``Ingest.ensure_index``), but stopped before ``later`` and
    without saving a snapshot: from the newest snapshot when it was taken before ``later``, else
    by replaying every article from the first (up to ``replay_limit`` of them; beyond, the newest
    snapshot's statistics stand in, an approximation the basis names)."""
    from ..dedup import RESTORE_BATCH, Deduplicator
    from ..errors import SchemaMismatch

    dedup = Deduplicator(settings)
    foreign = store.signature_schemes() - {dedup.scheme}
    if foreign:
        raise SchemaMismatch(f"{store.url}: stored signatures use {sorted(foreign)[0]!r}, this configuration makes {dedup.scheme!r}")
    since = later.first_seen_at - timedelta(hours=settings.window_hours)  # what the daemon's window held then
    snapshot = store.latest_snapshot(dedup.scheme)
    before = later.article_id - 1
    if snapshot is not None and (snapshot[0] <= before or before > replay_limit):
        last, data = snapshot
        crowd = dedup.load_snapshot(data)
        restored = dedup.restore(store.signature_chunks(RESTORE_BATCH, since=since, up_to=min(last, before)), crowd)
        dedup.last_article_id = min(last, before)
        if last <= before:
            basis = f"as it stood before #{later.article_id}: the snapshot at #{last} ({restored} articles in its window)"
        else:
            basis = (f"APPROXIMATE: #{later.article_id} was decided before the only snapshot (#{last}) and more than {replay_limit} "
                     f"articles ago; the window before it ({restored} articles) with the snapshot's later statistics and crowding")
    else:
        last, basis = 0, f"as it stood before #{later.article_id}: replayed from the first article"
    tail = [(r.article_id, r.story_id, dedup.decode(r.data), r.published_at, r.source, r.first_seen_at, r.text_length)
            for r in store.signatures(after=last, up_to=before)] if last <= before else []
    dedup.replay(tail)
    dedup.evict(since)
    if last and last <= before:
        basis += f" + {len(tail)} replayed"
    elif not last:
        basis += f" ({len(tail)} articles)"
    return dedup, basis


def show_why(story: Story, as_json: bool) -> None:
    """``story ID --why``: why its canonical is the canonical (``dedup.canonical_why.why_canonical``)."""
    from ..dedup.canonical_why import CanonicalMember, why_canonical

    # (``reported_at``: when the read model carries it; a date that was not credible counts from the first sighting)
    members = [CanonicalMember(v.article_id, v.source, v.title, v.published_at, v.first_seen_at, len(v.text), getattr(v, "reported_at", None))
               for v in story.variants]
    why = why_canonical(story.id, story.canonical_article_id, members)
    if as_json:
        print_json(why.as_dict())
        return
    out().print(f"{story.title}  (story {story.id})", soft_wrap=True)
    for line in why.lines():
        out().print(line, soft_wrap=True)
