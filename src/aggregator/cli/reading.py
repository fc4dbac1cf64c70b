"""The commands that read what is stored: ``clusters``, ``story``, ``digest``, ``feeds``. They open
the config and the store only (``factory.open_library``), never the fetcher or the dedup index."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import AggregatorError
from .app import ConfigOption, app, err, friendly, load, local, out, parse_day, parse_since, print_json

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


def print_stories(stories: list[Story], lib: Library, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("story", justify="right", no_wrap=True)
    table.add_column("title", ratio=3)
    table.add_column("first reported", ratio=2)
    table.add_column("srcs", justify="right")
    table.add_column("sources", ratio=2)
    for s in stories:
        table.add_row(str(s.id), s.title, f"{s.first_source}\n{local(s.first_reported_at, lib.config.tz)}", str(len(s.sources)),
                      ", ".join(s.sources))
    out().print(table)


@app.command()
@friendly
def clusters(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    day: DateOption = None,
    since: Annotated[str | None, typer.Option("--since", help="Stories reported since a duration ago (6h) or an ISO time.")] = None,
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


@app.command()
@friendly
def story(
    story_id: Annotated[int, typer.Argument(metavar="ID", help="Story id, as listed by `clusters`.", show_default=False, callback=_story_id)],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: JsonOption = False,
) -> None:
    """Show one story: the canonical text and every variant with outlet, time, URL and similarity."""
    with library(config) as lib:
        found = lib.story(story_id)
        if found is None:
            raise AggregatorError(f"no story with id {story_id}")
        if as_json:
            from ..shapes import story_dict

            print_json(story_dict(found, with_text=True))
            return
        from rich.table import Table
        from rich.text import Text

        tz = lib.config.tz
        out().print(Text.assemble((found.title, "bold"), f"  (story {found.id})"))
        out().print(f"first reported by {found.first_source} at {local(found.first_reported_at, tz)}; "
                    f"{len(found.sources)} source(s), {len(found.variants)} article(s)\n")
        out().print(found.canonical.text)
        table = Table(title="variants (kind and similarity relative to the canonical)", expand=True)
        for col in ("kind", "sim", "outlet", "published"):
            table.add_column(col)
        table.add_column("title / url", overflow="fold")  # a URL is read whole, not cut at the column's edge
        for v in found.variants:
            table.add_row(v.kind, f"{v.similarity:.2f}", v.source, local(v.published_at, tz), f"{v.title}\n{v.url or ''}")
        out().print(table)


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
    out().print(f"{files.stories} stories → {files.markdown} and {files.html}")


@app.command()
@friendly
def feeds(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: JsonOption = False,
    enable: Annotated[str | None, typer.Option("--enable", metavar="URL", help="Re-enable a feed disabled after 410 Gone, or reset its backoff: due now (a running daemon: after its restart).")] = None,
) -> None:
    """Each feed's health: last success, last error, next poll, backoff, disabled reason."""
    with library(config) as lib:
        if enable is not None:  # the address as configured, or where the feed moved
            if enable not in {f.url for f in lib.feeds()} | {f.url for f in lib.config.feeds} or not lib.store.enable_feed(enable, lib.clock()):
                raise AggregatorError(f"{enable}: not a feed of {config} (give its url as written there, or as `feeds` lists it)")
            err().print(f"{enable}: enabled and due now (if a daemon is running, it picks this up when restarted)")
        states = lib.feeds()
        tz = lib.config.tz
    from ..decide import health

    if as_json:
        from ..shapes import feed_dict

        print_json([feed_dict(f, health(f)) for f in states])
        return
    from rich.table import Table

    table = Table(expand=True)
    table.add_column("feed", overflow="fold")  # feeds of one host differ at the end of their URLs
    for col in ("health", "last success", "next poll", "last error / disabled reason"):
        table.add_column(col)

    def fmt(dt: datetime | None) -> str:
        return local(dt, tz) if dt else "—"

    for f in states:
        table.add_row(f"{f.name}\n{f.url}", health(f), fmt(f.last_success_at), "—" if f.disabled_reason else fmt(f.next_poll_at),
                      f.disabled_reason or f.last_error or "")
    out().print(table)
