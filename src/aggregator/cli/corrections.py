"""The reader's corrections of the clustering: ``story split ID ARTICLE...``, ``story merge ID
OTHER``, ``corrections`` (the list) and ``corrections undo N``. A correction changes the dedup
index with the stories, so it is made by the process that owns the storage (``factory.writer``):
this one when it can take the lock; while a daemon holds it, the daemon, which this one asks
(a queued request) and waits for (``--wait``). Exit codes: 0 applied, or queued and not applied
yet (the message says which); 2 refused (up front, or by the daemon, with its reason)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import DaemonLocked, UsageError
from .app import ConfigOption, app, friendly, load, local, out, print_json, print_row
from .reading import JsonOption, _story_id, library, story_app

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Correction
    from ..store.interface import CorrectionRequest

CORRECTION_WAIT_S = 15.0  # how long a correction waits for the daemon to apply it, by default
WAIT_STEP_S = 0.2

StoryId = Annotated[int, typer.Argument(metavar="ID", help="Story id, as listed by `clusters`.", show_default=False, callback=_story_id)]
WaitOption = Annotated[float, typer.Option(
    "--wait", min=0, metavar="SECONDS",
    help="While a daemon runs: how long to wait for it to apply the correction (0: queue it and return; it is applied all the same).")]


def _as_owner(cfg: Config, asked: CorrectionRequest | None = None, mine: int = 0) -> Correction | None:
    """As the storage's owner (``DaemonLocked`` when another process is): the requests queued
    before, in order, then ``asked``."""
    from ..corrections import apply, apply_pending_corrections
    from ..factory import writer

    with writer(cfg) as agg:
        for r in apply_pending_corrections(agg):
            if r.id != mine:
                out().print(f"request {r.id}, queued before, {'applied' if r.status == 'done' else f'failed: {r.reason}'}: {_asked(r)}")
        return apply(agg, asked) if asked is not None else None


def _correct(config: Path, asked: CorrectionRequest, wait: float, said: Callable[[Correction], str]) -> None:
    """Make the correction here when this process can own the storage; else queue it for the
    daemon that does (checked first: a mistake is refused now), and wait up to ``wait`` seconds for
    its answer, taking over should the daemon stop meanwhile. Prints ``said`` of the correction."""

    cfg = load(config)
    with library(cfg) as lib:  # (says where it looked when there is no database yet: a correction never makes one)
        try:
            made = _as_owner(cfg, asked)
        except DaemonLocked:
            made = None
        if made is not None:
            out().print(said(made))
            return
        from ..corrections import request_correction

        queue = lib.store.correction_queue()
        queued = request_correction(lib, asked)
        deadline = time.monotonic() + wait
        while (found := queue.get(queued.id)) is None or found.status == "pending":
            if time.monotonic() >= deadline:
                late, when = (f", not applied yet after {wait:g} s", "as soon as it can") if wait else ("", "within seconds")
                out().print(f"request {queued.id} queued{late}: {_asked(queued)}; the daemon that owns this storage applies it "
                            f"{when} (`aggregator corrections` lists it until then)")
                return
            time.sleep(WAIT_STEP_S)
            with contextlib.suppress(DaemonLocked):  # the daemon stopped: this process applies the queue
                _as_owner(cfg, mine=queued.id)
        if found.status != "done":
            raise UsageError(found.reason or f"request {found.id} failed")
        out().print(said(next(c for c in lib.store.corrections() if c.id == found.correction_id)))


def _done(c: Correction, what: str) -> str:
    return f"{what} (correction {c.id}; `aggregator corrections undo {c.id}` reverses it)"


def _articles(n: int) -> str:
    return f"{n} article{'' if n == 1 else 's'}"


def _asked(r: CorrectionRequest) -> str:
    if r.kind == "split":
        return f"split story {r.story_id}: move article{'' if len(r.article_ids) == 1 else 's'} {' '.join(map(str, r.article_ids))}"
    if r.kind == "merge":
        return f"merge story {r.other_story_id} into story {r.story_id}"
    return f"undo correction {r.correction_id}"


@story_app.command("split")
@friendly
def split(
    story_id: StoryId,
    article_ids: Annotated[list[int], typer.Argument(metavar="ARTICLE...", help="Articles to move to a new story (ids as `story ID --json` lists them).", show_default=False)],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    wait: WaitOption = CORRECTION_WAIT_S,
) -> None:
    """Move some articles of a story to a new story; later articles never join the two again."""
    from ..store.interface import CorrectionRequest

    _correct(config, CorrectionRequest("split", story_id, article_ids=tuple(article_ids)), wait, lambda c: _done(
        c, f"story {story_id} split: {_articles(len(c.article_ids))} moved to the new story {c.other_story_id}"))


@story_app.command("merge")
@friendly
def merge(story_id: StoryId, other_id: Annotated[int, typer.Argument(metavar="OTHER", help="The story merged into ID (it is left empty).", show_default=False, callback=_story_id)],
          config: ConfigOption = DEFAULT_CONFIG_PATH, wait: WaitOption = CORRECTION_WAIT_S) -> None:
    """Merge story OTHER into story ID: its articles join ID, and later articles close to them too."""
    from ..store.interface import CorrectionRequest

    _correct(config, CorrectionRequest("merge", story_id, other_id), wait, lambda c: _done(
        c, f"story {other_id} merged into story {story_id}: {_articles(len(c.article_ids))} moved"))


corrections_app = typer.Typer(rich_markup_mode=None, add_completion=False)
app.add_typer(corrections_app, name="corrections")


def correction_dict(c: Correction) -> dict[str, object]:
    return {"id": c.id, "kind": c.kind, "story_id": c.story_id, "other_story_id": c.other_story_id, "article_ids": list(c.article_ids),
            "created_at": c.created_at.isoformat(), "undone_at": c.undone_at.isoformat() if c.undone_at else None}


def _describe(c: Correction) -> str:
    n = _articles(len(c.article_ids))
    if c.kind == "split":
        return f"split story {c.story_id}: {n} moved to story {c.other_story_id}"
    return f"merged story {c.other_story_id} into story {c.story_id}: {n}"


@corrections_app.callback(invoke_without_command=True)
@friendly
def corrections(ctx: typer.Context, config: ConfigOption = DEFAULT_CONFIG_PATH, as_json: JsonOption = False) -> None:
    """List the splits and merges made by hand (`story split`, `story merge`), oldest first; `corrections undo N` reverses one.
    Then those asked for while a daemon runs that it has not applied yet, or could not (and why)."""

    if ctx.invoked_subcommand is not None:
        if as_json:
            raise typer.BadParameter(f"--json goes with `corrections` alone, not with `corrections {ctx.invoked_subcommand}`")
        ctx.obj = config
        return
    with library(config) as lib:
        found = lib.store.corrections()
        asked = lib.store.correction_queue().unfinished()
        tz = lib.config.tz
    if as_json:
        print_json([correction_dict(c) for c in found])
        return
    if not found and not asked:
        out().print("no corrections yet (`aggregator story split` and `story merge` make them)")
        return
    if found:
        print_row("# id, made, undone, what, articles")
    for c in found:
        print_row(str(c.id), local(c.created_at, tz), local(c.undone_at, tz) if c.undone_at else "", _describe(c),
                  " ".join(map(str, c.article_ids)))
    if asked:
        print_row("# requests queued for the daemon: request, asked, status, what")
    for r in asked:
        print_row(f"request {r.id}", local(r.requested_at, tz) if r.requested_at else "", r.status if r.status == "pending" else f"failed: {r.reason}",
                  _asked(r))


@corrections_app.command("undo")
@friendly
def undo(
    ctx: typer.Context,
    correction_id: Annotated[int, typer.Argument(metavar="N", help="Correction id, as `corrections` lists them.", show_default=False)],
    config: Annotated[Path | None, typer.Option("--config", "-c", show_default=False, help="Config file. [default: the one given to `corrections`, else config/feeds.yaml]")] = None,
    wait: WaitOption = CORRECTION_WAIT_S,
) -> None:
    """Reverse a correction: the articles it moved go back, and each story's canonical is worked out again."""
    from ..store.interface import CorrectionRequest

    path = config if config is not None else (ctx.obj if isinstance(ctx.obj, Path) else DEFAULT_CONFIG_PATH)
    _correct(path, CorrectionRequest("undo", correction_id=correction_id), wait, lambda c: f"correction {c.id} undone: {_describe(c)}, reversed")
