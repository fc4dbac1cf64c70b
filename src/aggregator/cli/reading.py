"""The commands that read what is stored: ``clusters``, ``story``, ``digest``, ``feeds``. They open
the config and the store only (``factory.open_library``), never the fetcher or the dedup index."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import AggregatorError
from .app import EXIT_ERROR, ConfigOption, app, friendly, load, local, out, parse_day, parse_since, print_json, print_row

if TYPE_CHECKING:
    from ..config import Config
    from ..library import Library
    from ..models import Story

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DateOption = Annotated[str | None, typer.Option("--date", help="Local day YYYY-MM-DD (default: today).")]


@contextmanager
def library(config: Path | Config) -> Iterator[Library]:
    from ..factory import open_library

    lib = open_library(load(config) if isinstance(config, Path) else config)
    try:
        yield lib
    finally:
        lib.close()


STATUS_MARK = {"unread": "•", "read": "", "updated": "+"}


def print_stories(stories: list[Story], lib: Library, title: str) -> None:
    """A TTY gets a table that fits it; a pipe or file gets one tab-separated line per story, whole
    (id, status, sources, first source, first reported, title, all sources, last update: a new
    field goes at the end, so the positions scripts read stay)."""
    from ..listing import copy_count, last_update

    tz = lib.config.tz
    if not out().is_terminal:
        print_row(f"# {title}: id, status, sources, first source, first reported, title, all sources, last update")
        for s in stories:
            print_row(str(s.id), s.status, str(len(s.sources)), s.first_source, local(s.first_reported_at, tz), s.title, ", ".join(s.sources),
                      local(s.updated_at, tz))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, expand=True, caption="• unread   + updated since read (new sources)")
    table.add_column("story", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("title", ratio=3)
    table.add_column("first reported · last update", ratio=2)
    table.add_column("srcs", justify="right")
    table.add_column("sources", ratio=2)
    for s in stories:
        mark = STATUS_MARK[s.status] + (str(len(s.new_variants)) if s.status == "updated" else "")
        first = Text.assemble(f"{s.first_source}\n{local(s.first_reported_at, tz)}\n", (last_update(s, tz), "dim"))
        heading = Text(s.title)
        copies, of = copy_count(s)
        if copies:  # under the title, which is shorter than the sources: the row grows less
            heading.append(f"\n{copies} cop{'ies' if copies != 1 else 'y'} of {of}", "dim")
        table.add_row(str(s.id), mark, heading, first, str(len(s.sources)), ", ".join(s.sources))
    out().print(table)


@app.command()
@friendly
def clusters(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    day: DateOption = None,
    since: Annotated[str | None, typer.Option("--since", help="Stories reported since a duration ago (6h) or an ISO time.")] = None,
    unread: Annotated[bool, typer.Option("--unread", help="Only stories not read yet, or updated since they were read.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the day's stories: title, who reported first and when, how many sources, which."""
    if since and day:
        raise typer.BadParameter("give --date or --since, not both")
    from ..library import utcnow

    cfg = load(config)
    now = utcnow()
    if since:  # options are checked before the database is opened
        start = parse_since(since, now, cfg.tz)
        label = f"stories since {local(start, cfg.tz)}"
    else:
        the_day = parse_day(day) if day else now.astimezone(cfg.tz).date()
        label = f"stories on {the_day.isoformat()} ({cfg.settings.timezone})"
    with library(cfg) as lib:
        stories = lib.stories_between(start, now + timedelta(days=1)) if since else lib.stories_on(the_day)
        if unread:
            stories = [s for s in stories if s.status != "read"]
            label = f"unread or updated {label}"
        if as_json:
            from ..shapes import story_dict

            print_json([story_dict(s) for s in stories])
        else:
            print_stories(stories, lib, f"{len(stories)} {label}")


def _story_id(value: int) -> int:
    """A story id the database can hold (checked here rather than by a typed range, whose bounds
    the help would print as `[1<=x<=9223372036854775807]`)."""
    if not 1 <= value <= 2**63 - 1:
        raise typer.BadParameter(f"{value} is not a story id (a positive number, as `clusters` lists them)")
    return value


class _StoryGroup(TyperGroup):
    """``story ID`` shows a story, ``story split|merge ...`` correct it: arguments that do not start
    with a subcommand's name go to the hidden ``show`` (Click would otherwise read ``split`` as the ID)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # (Typer's own Click context)
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


story_app = typer.Typer(cls=_StoryGroup, rich_markup_mode=None, add_completion=False, no_args_is_help=True)
app.add_typer(story_app, name="story", help=(
    "`story ID [--json] [--why]`: show one story, its canonical text and every variant with outlet, time, URL and similarity. "
    "`story split ID ARTICLE...` and `story merge ID OTHER` correct how articles were grouped (see `corrections`)."))


@story_app.command("show", hidden=True)
@friendly
def story(
    story_id: Annotated[int, typer.Argument(metavar="ID", help="Story id, as listed by `clusters`.", show_default=False, callback=_story_id)],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: JsonOption = False,
    why: Annotated[bool, typer.Option("--why", help="Why its canonical is the canonical: each member's text length, times, and the rule that decided.")] = False,
) -> None:
    """Show one story: the canonical text and every variant with outlet, time, URL and similarity."""
    with library(config) as lib:
        found = lib.story(story_id)
        if found is None:
            if (into := lib.merged_into(story_id)) is not None:  # merged away by the reader: say where it went
                from ..shapes import merged_away

                gone = merged_away(story_id, into)
                if not as_json:
                    raise AggregatorError(gone["error"])
                print_json(gone)
                raise typer.Exit(EXIT_ERROR)
            raise AggregatorError(f"no story with id {story_id}")
        if why:
            from .explain import show_why

            show_why(found, as_json)
            return
        timeline = lib.timeline(found)
        if as_json:
            from ..shapes import story_dict

            print_json(story_dict(found, with_text=True, timeline=timeline, revisions=lib.revisions(found)))
            return
        from rich.table import Table
        from rich.text import Text

        tz = lib.config.tz
        plain = not out().is_terminal
        out().print(Text.assemble((found.title, "bold"), f"  (story {found.id})"), soft_wrap=plain)
        status = {"unread": "unread", "read": f"read {local(found.read_at, tz) if found.read_at else ''}",
                  "updated": f"updated: {len(found.new_variants)} new article(s) since read"}[found.status]
        out().print(f"first reported by {found.first_source} at {local(found.first_reported_at, tz)}; "
                    f"{len(found.sources)} source(s), {len(found.variants)} article(s); {status}\n", soft_wrap=plain)
        from ..facts import story_facts, summary_line

        if facts := story_facts(found):
            out().print(f"facts: {summary_line(facts)}\n", soft_wrap=plain)
        out().print(found.canonical.text, soft_wrap=plain)
        # the timeline, one line per event: local time, what happened, the outlet, what changed and why
        out().print("")
        if plain:
            print_row("# timeline: local time, event, outlet, what")
        else:
            out().print("timeline", style="bold")
        for e in timeline:
            if plain:
                print_row(local(e.at, tz), e.kind, e.source or "", e.text)
            else:
                out().print(f"{local(e.at, tz)}  {e.kind:<9} {e.source + ': ' if e.source else ''}{e.text}", soft_wrap=False)
        new = {v.article_id for v in found.new_variants} if found.status == "updated" else set()
        if plain:  # one tab-separated line per variant, URLs whole
            out().print("")
            print_row("# variants: kind, similarity to the canonical, outlet, published, title, url, new since read")
            for v in found.variants:
                print_row(v.kind, f"{v.similarity:.2f}", v.source, local(v.published_at, tz), v.title, v.url or "", "new" if v.article_id in new else "")
            return
        table = Table(title="variants (kind and similarity relative to the canonical)", expand=True)
        for col in ("kind", "sim", "outlet", "published"):
            table.add_column(col)
        table.add_column("title / url", overflow="fold")  # a URL is read whole, not cut at the column's edge
        for v in found.variants:
            kind = f"{v.kind} (new)" if v.article_id in new else v.kind
            table.add_row(kind, f"{v.similarity:.2f}", v.source, local(v.published_at, tz), f"{v.title}\n{v.url or ''}")
        out().print(table)


StoryIds = Annotated[list[int], typer.Argument(metavar="ID...", help="Story ids, as `clusters` lists them.", show_default=False)]


def _mark(config: Path, story_ids: list[int], read: bool) -> None:
    for value in story_ids:
        _story_id(value)
    with library(config) as lib:
        missing = sorted(set(story_ids) - {s.id for s in lib.store.load_stories(story_ids)})
        found = lib.mark_read(story_ids) if read else lib.mark_unread(story_ids)
    out().print(f"{found} stor{'y' if found == 1 else 'ies'} marked {'read' if read else 'unread'}")
    if missing:
        raise AggregatorError(f"no story with id {', '.join(map(str, missing))}")


@app.command()
@friendly
def read(story_ids: StoryIds, config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Mark stories read: `clusters --unread` hides them until they gain new sources."""
    _mark(config, story_ids, read=True)


@app.command()
@friendly
def unread(story_ids: StoryIds, config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Mark stories unread again."""
    _mark(config, story_ids, read=False)


@app.command()
@friendly
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help='Words (all must match) and "quoted phrases".', show_default=False)],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many stories.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Search the stored articles' titles and texts; results grouped by story, newest first."""
    with library(config) as lib:
        results = lib.search(query, limit=limit)
        tz = lib.config.tz
    if as_json:
        from ..shapes import search_dict

        print_json([search_dict(r) for r in results])
        return
    from rich.text import Text

    if not results:
        out().print(f"no story matches {query!r}")
    for r in results:
        s = r.story
        out().print(Text.assemble((s.title, "bold"), f"  (story {s.id}, {len(s.sources)} source(s), first {s.first_source} "
                                  f"{local(s.first_reported_at, tz)})"), soft_wrap=True)
        for h in r.hits:
            line = Text(f"  {h.source}, {local(h.published_at, tz)}: ")
            snippet = Text(h.snippet)
            for start, end in h.marks:
                snippet.stylize("bold yellow", start, end)
            out().print(line + snippet, soft_wrap=not out().is_terminal)
            if h.url:
                out().print(f"    {h.url}", soft_wrap=True)


@app.command()
@friendly
def digest(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    day: DateOption = None,
) -> None:
    """Write the daily digest (storage/digests/YYYY-MM-DD.md and .html)."""
    the_day = parse_day(day) if day else None
    with library(config) as lib:
        files = lib.write_digest(the_day)
    out().print(f"{files.stories} stories → {files.markdown} and {files.html}; index {files.index}; story feeds {files.atom} and {files.json}")
