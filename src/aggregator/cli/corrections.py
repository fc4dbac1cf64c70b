"""The reader's corrections of the clustering: ``story split ID ARTICLE...``, ``story merge ID
OTHER``, ``corrections`` (the list) and ``corrections undo N``. They write, so they hold the
storage's one-writer lock (``factory.writer``) and refuse while a daemon runs: its dedup index
lives in its memory, and takes the corrections from the database when it starts again."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from .app import ConfigOption, app, friendly, load, local, out, print_json, print_row
from .reading import JsonOption, _story_id, library, story_app

if TYPE_CHECKING:
    from ..core import Aggregator
    from ..store import Correction

CORRECTION_REFUSAL = ("a running aggregator daemon owns this storage and holds its stories in memory; "
                      "stop it to correct stories (it takes the corrections up when it starts again)")

StoryId = Annotated[int, typer.Argument(metavar="ID", help="Story id, as listed by `clusters`.", show_default=False, callback=_story_id)]


def _correcting(config: Path) -> AbstractContextManager[Aggregator]:
    """The writer, once the database is known to be there (a correction never makes one)."""
    from ..factory import writer

    cfg = load(config)
    with library(cfg):
        pass  # says where it looked when there is no database yet
    return writer(cfg, CORRECTION_REFUSAL)


def _done(c: Correction, what: str) -> None:
    out().print(f"{what} (correction {c.id}; `aggregator corrections undo {c.id}` reverses it)")


@story_app.command("split")
@friendly
def split(
    story_id: StoryId,
    article_ids: Annotated[list[int], typer.Argument(metavar="ARTICLE...", help="Articles to move to a new story (ids as `story ID --json` lists them).", show_default=False)],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
) -> None:
    """Move some articles of a story to a new story; later articles never join the two again."""
    from ..corrections import split_story

    with _correcting(config) as agg:
        c = split_story(agg, story_id, article_ids)
    n = len(c.article_ids)
    _done(c, f"story {story_id} split: {n} article{'' if n == 1 else 's'} moved to the new story {c.other_story_id}")


@story_app.command("merge")
@friendly
def merge(story_id: StoryId, other_id: Annotated[int, typer.Argument(metavar="OTHER", help="The story merged into ID (it is left empty).", show_default=False, callback=_story_id)],
          config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Merge story OTHER into story ID: its articles join ID, and later articles close to them too."""
    from ..corrections import merge_stories

    with _correcting(config) as agg:
        c = merge_stories(agg, story_id, other_id)
    n = len(c.article_ids)
    _done(c, f"story {other_id} merged into story {story_id}: {n} article{'' if n == 1 else 's'} moved")


corrections_app = typer.Typer(rich_markup_mode=None, add_completion=False)
app.add_typer(corrections_app, name="corrections")


def correction_dict(c: Correction) -> dict[str, object]:
    return {"id": c.id, "kind": c.kind, "story_id": c.story_id, "other_story_id": c.other_story_id, "article_ids": list(c.article_ids),
            "created_at": c.created_at.isoformat(), "undone_at": c.undone_at.isoformat() if c.undone_at else None}


def _describe(c: Correction) -> str:
    n = f"{len(c.article_ids)} article{'' if len(c.article_ids) == 1 else 's'}"
    if c.kind == "split":
        return f"split story {c.story_id}: {n} moved to story {c.other_story_id}"
    return f"merged story {c.other_story_id} into story {c.story_id}: {n}"


@corrections_app.callback(invoke_without_command=True)
@friendly
def corrections(ctx: typer.Context, config: ConfigOption = DEFAULT_CONFIG_PATH, as_json: JsonOption = False) -> None:
    """List the splits and merges made by hand (`story split`, `story merge`), oldest first; `corrections undo N` reverses one."""
    if ctx.invoked_subcommand is not None:
        if as_json:
            raise typer.BadParameter(f"--json goes with `corrections` alone, not with `corrections {ctx.invoked_subcommand}`")
        ctx.obj = config
        return
    with library(config) as lib:
        found = lib.store.corrections()
        tz = lib.config.tz
    if as_json:
        print_json([correction_dict(c) for c in found])
        return
    if not found:
        out().print("no corrections yet (`aggregator story split` and `story merge` make them)")
        return
    print_row("# id, made, undone, what, articles")
    for c in found:
        print_row(str(c.id), local(c.created_at, tz), local(c.undone_at, tz) if c.undone_at else "", _describe(c),
                  " ".join(map(str, c.article_ids)))


@corrections_app.command("undo")
@friendly
def undo(
    ctx: typer.Context,
    correction_id: Annotated[int, typer.Argument(metavar="N", help="Correction id, as `corrections` lists them.", show_default=False)],
    config: Annotated[Path | None, typer.Option("--config", "-c", show_default=False, help="Config file. [default: the one given to `corrections`, else config/feeds.yaml]")] = None,
) -> None:
    """Reverse a correction: the articles it moved go back, and each story's canonical is worked out again."""
    from ..corrections import undo as undo_correction

    path = config if config is not None else (ctx.obj if isinstance(ctx.obj, Path) else DEFAULT_CONFIG_PATH)
    with _correcting(path) as agg:
        c = undo_correction(agg, correction_id)
    out().print(f"correction {c.id} undone: {_describe(c)}, reversed")
