"""``aggregator feeds``: each feed's health (the group alone, as before), and the feed list managed
without editing YAML by hand: ``feeds add URL`` (a feed, or a site's page that links to one),
``feeds remove URL``, ``feeds export`` (OPML). ``add`` and ``remove`` edit the config file in place
(``configedit``: comments and layout kept, the result validated before it replaces the file); a
running daemon picks the change up by itself."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import AggregatorError
from .app import ConfigOption, app, err, flagged, format_duration, friendly, load, local, out, print_json, print_row
from .reading import JsonOption, library

if TYPE_CHECKING:
    from ..config import Config
    from ..discover import Found
    from ..models import FeedState

feeds_app = typer.Typer(rich_markup_mode=None, add_completion=False)
app.add_typer(feeds_app, name="feeds")

# A subcommand's own --config; without it, the one given to `feeds` (`aggregator feeds -c X add URL`).
SubConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", show_default=False, help="Config file (feeds and settings). [default: the one given to `feeds`, else config/feeds.yaml]")]
PICKUP = "a running daemon applies this within seconds; otherwise the next `aggregator poll` or `run` does"


def _config_path(ctx: typer.Context, config: Path | None) -> Path:
    given = ctx.obj if isinstance(ctx.obj, Path) else DEFAULT_CONFIG_PATH
    return config if config is not None else given


@feeds_app.callback(invoke_without_command=True)
@friendly
def feeds(
    ctx: typer.Context,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: JsonOption = False,
    enable: Annotated[str | None, typer.Option("--enable", metavar="URL", help="Re-enable a feed disabled after 410 Gone, or reset its backoff: due now (a running daemon: after its restart).")] = None,
) -> None:
    """Each feed's health: last success, last error, next poll, backoff, disabled reason. The
    subcommands change the config's feed list: add, remove, export."""
    if ctx.invoked_subcommand is not None:
        if as_json or enable is not None:
            raise typer.BadParameter(f"--json and --enable go with `feeds` alone, not with `feeds {ctx.invoked_subcommand}`")
        ctx.obj = config
        return
    with library(config) as lib:
        if enable is not None:  # the address as configured, or where the feed moved
            if enable not in {f.url for f in lib.feeds()} | {f.url for f in lib.config.feeds} or not lib.store.enable_feed(enable, lib.clock()):
                raise AggregatorError(f"{enable}: not a feed of {config} (give its url as written there, or as `feeds` lists it)")
            err().print(f"{enable}: enabled and due now (if a daemon is running, it picks this up when restarted)")
        states = lib.feeds()
        tz = lib.config.tz
    from ..decide import health, interval_in_force

    sched = lib.config.settings.schedule
    if as_json:
        from ..shapes import feed_dict

        print_json([feed_dict(f, sched) for f in states])
        return

    def fmt(dt: datetime | None) -> str:
        return local(dt, tz) if dt else "—"

    def every(f: FeedState) -> tuple[str, str]:
        seconds, why = interval_in_force(f, sched)
        return format_duration(seconds), why

    if not out().is_terminal:  # a pipe or a file: one tab-separated line per feed, whole
        print_row("# name, url, health, last success, next poll, interval in force, why, last error or disabled reason")
        for f in states:
            print_row(f.name, f.url, health(f), fmt(f.last_success_at), "—" if f.disabled_reason else fmt(f.next_poll_at), *every(f),
                      f.disabled_reason or f.last_error or "")
        return
    from rich.table import Table

    table = Table(expand=True)
    table.add_column("feed", overflow="fold")  # feeds of one host differ at the end of their URLs
    for col in ("health", "last success", "next poll", "every", "last error / disabled reason"):
        table.add_column(col)
    for f in states:
        every_s, why = every(f)
        table.add_row(f"{f.name}\n{f.url}", health(f), fmt(f.last_success_at), "—" if f.disabled_reason else fmt(f.next_poll_at),
                      f"{every_s}\n({why})", f.disabled_reason or f.last_error or "")
    out().print(table)


@feeds_app.command()
@friendly
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", show_default=False,
                                       help="The feed's address, or a page of the site that links to its feed (feed:// works too).")],
    name: Annotated[str | None, typer.Option("--name", help="How the outlet appears in stories. [default: the feed's own title]")] = None,
    interval: Annotated[str | None, typer.Option("--interval", metavar="DURATION", help="How often to poll it, e.g. 30m. [default: settings.schedule.default_interval]")] = None,
    config: SubConfigOption = None,
) -> None:
    """Add a feed to the config, checked first: its address, or a site's page whose <link
    rel="alternate"> names it (the site's main feed is chosen; the others are listed)."""
    from ..configedit import NewFeed, add_feed
    from ..discover import subscription_url
    from ..models import outlet_name

    path = _config_path(ctx, config)
    address = subscription_url(url, assume_https=True)
    _check_address(address, url)
    if interval is not None:
        from ..config import parse_duration

        try:
            parse_duration(interval)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--interval") from None
    if name is not None and not name.strip():
        raise typer.BadParameter("a name needs some text (leave --name out to use the feed's title)", param_hint="--name")
    cfg = load(path)
    _not_listed(cfg, address, path)
    found = _find(cfg, address)
    if found.url != address:
        _not_listed(cfg, found.url, path, f" (found on {found.page})" if found.page else " (where it redirects)")
    chosen = name.strip() if name is not None else outlet_name(found.title)  # as the store would name it: one line, not too long
    add_feed(path, NewFeed(found.url, chosen, interval))
    out().print(f"added {found.url} ({chosen or 'no name: the feed has no title'}) to {path}")
    if found.page:
        also = f"; it also links to {', '.join(found.others)}" if found.others else ""
        err().print(f"found on {found.page}{also}")
    if found.warning:
        err().print(flagged("!", "yellow", f"the feed reads, but is malformed: {found.warning}"))
    err().print(PICKUP)


@feeds_app.command()
@friendly
def remove(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", show_default=False,
                                       help="The feed's address as the config lists it (compared normalised: scheme and host case, default port, tracking parameters).")],
    config: SubConfigOption = None,
) -> None:
    """Remove a feed from the config; its stored articles and stories stay."""
    from ..configedit import remove_feed
    from ..discover import subscription_url

    path = _config_path(ctx, config)
    done = remove_feed(path, subscription_url(url, assume_https=True))
    if done is None:
        raise AggregatorError(f"{url}: not a feed of {path} (give its url as written there)")
    removed, _ = done
    out().print(f"removed {removed.url}{f' ({removed.name})' if removed.name else ''} from {path}; its stored articles stay")
    err().print(PICKUP)


@feeds_app.command()
@friendly
def export(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the OPML to this file. [default: standard output]")] = None,
    config: SubConfigOption = None,
) -> None:
    """Write the config's feeds as an OPML 2.0 subscription list (for another reader, or to import
    elsewhere with `aggregator opml`)."""
    from ..configedit import feeds_opml
    from ..library import utcnow

    path = _config_path(ctx, config)
    cfg = load(path)
    text = feeds_opml(cfg.feeds, f"aggregator feeds ({path.name})", utcnow())
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AggregatorError(f"{output}: cannot write: {exc.strerror or exc}") from None
    err().print(f"{len(cfg.feeds)} feed(s) → {output}")


def _check_address(address: str, given: str) -> None:
    """Refuse what the config would refuse (not http or https, a bad port) before anything is fetched."""
    from pydantic import ValidationError

    from ..config import FeedConfig

    try:
        FeedConfig(url=address)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise typer.BadParameter(f"{message} (given {given!r})", param_hint="URL") from None


def _not_listed(cfg: Config, address: str, path: Path, where: str = "") -> None:
    from ..urls import normalize_url

    wanted = normalize_url(address)
    for feed in cfg.feeds:
        if normalize_url(feed.url) == wanted:
            same = "" if feed.url == address else f", as {feed.url}"
            raise AggregatorError(f"{address}{where}: already in {path}{same}")


def _find(cfg: Config, address: str) -> Found:
    """The feed at ``address`` (or linked from the page there), fetched under the config's limits."""
    import asyncio

    from ..config import FeedConfig
    from ..discover import find_feed
    from ..factory import make_fetcher

    # The address typed is named by the user as a feed of the config is: the guard treats it so.
    probe = cfg.model_copy(update={"feeds": (*cfg.feeds, FeedConfig(url=address))})

    async def run() -> Found:
        async with make_fetcher(probe) as fetcher:
            return await find_feed(fetcher, address)

    with err().status(f"fetching {address}"):
        return asyncio.run(run())
