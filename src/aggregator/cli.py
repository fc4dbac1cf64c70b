"""Command line: ``aggregator run | poll | clusters | story | digest | feeds | demo``.

User mistakes (bad config, unknown story, locked storage) become one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import time as _time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .config import DEFAULT_CONFIG_PATH, Config, DedupSettings, load_config, parse_duration
from .core import FEED_LOG, Aggregator
from .errors import AggregatorError, ConfigError, DaemonLocked
from .models import Story

app = typer.Typer(add_completion=False, no_args_is_help=True, help="News aggregator: feeds in, deduplicated stories out.")
# Feed text (titles, outlet names, errors quoting servers) is printed as it is: no Rich markup
# ("[/]" would crash a table, "[video]" would vanish) and no emoji codes (":fire:").
out = Console(markup=False, emoji=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)  # one error, one line, however long

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Config file (feeds and settings).")]
F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR, EXIT_USAGE, EXIT_LOCKED = 1, 2, 3
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)  # no news older than this; and date arithmetic stays in range
LATEST_DAY = date(9998, 12, 31)


def _flagged(flag: str, style: str, message: str) -> Text:
    """``flag`` in colour, then ``message`` verbatim."""
    return Text.assemble((flag, style), " ", message)


def _friendly(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            err.print(_flagged("config error:", "red", str(exc)))
            raise typer.Exit(EXIT_USAGE) from None
        except DaemonLocked as exc:
            err.print(_flagged("error:", "red", str(exc)))
            raise typer.Exit(EXIT_LOCKED) from None
        except AggregatorError as exc:
            err.print(_flagged("error:", "red", str(exc)))
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug).")] = 0) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _open(config: Path, reader: bool = False) -> Aggregator:
    """``reader``: a command that does not poll (it leaves the stored feeds' names and intervals alone)."""
    return Aggregator(load_config(config), reader=reader)


def _open_to_poll(config: Path) -> Aggregator:
    """For the commands that poll: a config without feeds is a mistake, said before any file is made."""
    loaded = load_config(config)
    if not loaded.feeds:
        raise ConfigError(f"{config}: no feeds to poll: list them under `feeds:` (see config/feeds.yaml)")
    return Aggregator(loaded)


def _given_config(config: Path) -> Config | None:
    """For commands that also work without a config: the config when it exists or was named
    (a named one that is missing is an error); None for the default path when it is absent."""
    return load_config(config) if config.exists() or config != DEFAULT_CONFIG_PATH else None


def _local(dt: datetime, agg: Aggregator) -> str:
    return dt.astimezone(agg.config.tz).strftime("%Y-%m-%d %H:%M")


def _story_dict(story: Story, agg: Aggregator, with_text: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": story.id,
        "title": story.title,
        "first_source": story.first_source,
        "first_reported_at": story.first_reported_at.isoformat(),
        "sources": list(story.sources),
        "source_count": len(story.sources),
        "articles": len(story.variants),
        "canonical_article_id": story.canonical_article_id,
        "variants": [
            {
                "article_id": v.article_id, "source": v.source, "title": v.title, "url": v.url,
                "published_at": v.published_at.isoformat(), "kind": v.kind, "similarity": v.similarity,
            }
            for v in story.variants
        ],
    }
    if with_text:
        data["canonical_text"] = story.canonical.text
    return data


def print_stories(stories: list[Story], agg: Aggregator, title: str) -> None:
    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("story", justify="right", no_wrap=True)
    table.add_column("title", ratio=3)
    table.add_column("first reported", ratio=2)
    table.add_column("srcs", justify="right")
    table.add_column("sources", ratio=2)
    for s in stories:
        table.add_row(str(s.id), s.title, f"{s.first_source}\n{_local(s.first_reported_at, agg)}", str(len(s.sources)), ", ".join(s.sources))
    out.print(table)


@app.command()
@_friendly
def run(config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Run the daemon: poll every feed on its schedule, cluster, write the daily digest. Stops on SIGINT/SIGTERM."""
    from .schedule import Daemon

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # APScheduler (every job) and httpx (every request) log at INFO: -vv shows them
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    agg = _open_to_poll(config)
    try:
        asyncio.run(Daemon(agg).run())
    finally:
        agg.close()


@app.command()
@_friendly
def poll(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    all_feeds: Annotated[bool, typer.Option("--all", help="Poll every enabled feed, not only those due.")] = False,
) -> None:
    """Run one polling round (the feeds that are due) and exit: for cron and scripts."""
    from .schedule import storage_owned

    if logging.getLogger().getEffectiveLevel() > logging.INFO:  # each failure or broken feed gets its line below: not a log line too
        logging.getLogger(FEED_LOG).setLevel(logging.ERROR)
    agg = _open_to_poll(config)
    try:
        with storage_owned(agg.config.lock_dir, "a running aggregator daemon owns this storage and polls its feeds; stop it to poll by hand"):
            reports = asyncio.run(agg.poll_round(due_only=not all_feeds))
    finally:
        agg.close()
    failed = 0
    for r in reports:
        if r.error:
            failed += 1
            err.print(_flagged("✗", "red", f"{r.feed_url}: {r.error}"))
        elif r.warning:
            err.print(_flagged("!", "yellow", f"{r.feed_url}: {r.new_articles} new, but the feed is broken: {r.warning}"))
        else:
            state = "not modified" if r.not_modified else f"{r.new_articles} new"
            out.print(_flagged("✓", "green", f"{r.feed_url}: {state}"))
    out.print(f"{len(reports)} feed(s) polled, {sum(r.new_articles for r in reports)} new article(s), {failed} failed")
    if reports and failed == len(reports):  # nothing reached: for cron and scripts, a failure (one failing feed of many is not)
        raise typer.Exit(EXIT_ERROR)


def _parse_since(value: str, now: datetime, tz: tzinfo) -> datetime:
    """A duration ago, or an ISO date-time (local time in ``tz`` when it names no offset)."""
    try:
        seconds = parse_duration(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"expected a duration (6h, 2d; at most 366d) or an ISO date-time, got {value!r}", param_hint="--since") from None
        when = when if when.tzinfo else when.replace(tzinfo=tz)
    else:
        when = now - timedelta(seconds=seconds)
    if not EARLIEST <= when <= now + timedelta(days=1):
        raise typer.BadParameter(f"expected a time between 1970 and now, got {value!r}", param_hint="--since")
    return when


@app.command()
@_friendly
def clusters(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    day: Annotated[str | None, typer.Option("--date", help="Local day YYYY-MM-DD (default: today).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Stories reported since a duration ago (6h) or an ISO time.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the day's stories: title, who reported first and when, how many sources, which."""
    agg = _open(config, reader=True)
    try:
        if since and day:
            raise typer.BadParameter("give --date or --since, not both")
        if since:
            start = _parse_since(since, agg.clock(), agg.config.tz)
            stories = agg.stories_between(start, agg.clock() + timedelta(days=1))
            label = f"stories since {_local(start, agg)}"
        else:
            the_day = _parse_day(day) if day else agg.today()
            stories = agg.stories_on(the_day)
            label = f"stories on {the_day.isoformat()} ({agg.config.settings.timezone})"
        if as_json:
            out.print_json(json.dumps([_story_dict(s, agg) for s in stories], ensure_ascii=False))
        else:
            print_stories(stories, agg, f"{len(stories)} {label}")
    finally:
        agg.close()


def _parse_day(value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}", param_hint="--date") from None
    if not EARLIEST.date() <= day <= LATEST_DAY:
        raise typer.BadParameter(f"expected a date between {EARLIEST.date()} and {LATEST_DAY}, got {value!r}", param_hint="--date")
    return day


@app.command()
@_friendly
def story(
    story_id: Annotated[int, typer.Argument(help="Story id, as listed by `clusters`.", min=1, max=2**63 - 1)],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show one story: the canonical text and every variant with outlet, time, URL and similarity."""
    agg = _open(config, reader=True)
    try:
        found = agg.story(story_id)
        if found is None:
            raise AggregatorError(f"no story with id {story_id}")
        if as_json:
            out.print_json(json.dumps(_story_dict(found, agg, with_text=True), ensure_ascii=False))
            return
        out.print(Text.assemble((found.title, "bold"), f"  (story {found.id})"))
        out.print(f"first reported by {found.first_source} at {_local(found.first_reported_at, agg)}; "
                  f"{len(found.sources)} source(s), {len(found.variants)} article(s)\n")
        out.print(found.canonical.text)
        table = Table(title="variants (kind and similarity relative to the canonical)", expand=True)
        for col in ("kind", "sim", "outlet", "published"):
            table.add_column(col)
        table.add_column("title / url", overflow="fold")  # a URL is read whole, not cut at the column's edge
        for v in found.variants:
            table.add_row(v.kind, f"{v.similarity:.2f}", v.source, _local(v.published_at, agg), f"{v.title}\n{v.url or ''}")
        out.print(table)
    finally:
        agg.close()


@app.command()
@_friendly
def digest(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    day: Annotated[str | None, typer.Option("--date", help="Local day YYYY-MM-DD (default: today).")] = None,
) -> None:
    """Write the daily digest (storage/digests/YYYY-MM-DD.md and .html)."""
    agg = _open(config, reader=True)
    try:
        files = agg.write_digest(_parse_day(day) if day else None)
    finally:
        agg.close()
    out.print(f"{files.stories} stories → {files.markdown} and {files.html}")


@app.command()
@_friendly
def feeds(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    enable: Annotated[str | None, typer.Option("--enable", metavar="URL", help="Re-enable a feed disabled after 410 Gone, or reset its backoff: due now (a running daemon: after its restart).")] = None,
) -> None:
    """Each feed's health: last success, last error, next poll, backoff, disabled reason."""
    agg = _open(config, reader=True)
    try:
        if enable is not None:  # the address as configured, or where the feed moved
            if enable not in {f.url for f in agg.feeds()} | {f.url for f in agg.config.feeds} or not agg.store.enable_feed(enable, agg.clock()):
                raise AggregatorError(f"{enable}: not a feed of {config} (give its url as written there, or as `feeds` lists it)")
            err.print(f"{enable}: enabled and due now (if a daemon is running, it picks this up when restarted)")
        states = agg.feeds()
    finally:
        agg.close()
    from .decide import health

    if as_json:
        rows = [{**{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(f).items()}, "health": health(f)} for f in states]
        out.print_json(json.dumps(rows))
        return
    table = Table(expand=True)
    table.add_column("feed", overflow="fold")  # feeds of one host differ at the end of their URLs
    for col in ("health", "last success", "next poll", "last error / disabled reason"):
        table.add_column(col)
    def fmt(dt: datetime | None) -> str:
        return _local(dt, agg) if dt else "—"

    for f in states:
        table.add_row(f"{f.name}\n{f.url}", health(f), fmt(f.last_success_at), "—" if f.disabled_reason else fmt(f.next_poll_at),
                      f.disabled_reason or f.last_error or "")
    out.print(table)


@app.command()
@_friendly
def opml(
    file: Annotated[Path, typer.Argument(help="OPML subscription list exported from another reader.")],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
) -> None:
    """Print the feeds of an OPML file as YAML entries to append to the config's `feeds:` list
    (feeds the config lists already are left out: listed twice, they would make it invalid)."""
    from .config import feeds_from_opml
    from .urls import normalize_url

    found, refused = feeds_from_opml(file)
    given = _given_config(config)
    listed = {normalize_url(f.url) for f in given.feeds} if given else set()
    new = [feed for feed in found if normalize_url(feed.url) not in listed]
    if new:  # a blank line first: appended to a config whose last line has no newline, the entries stay entries
        out.print("")
    for feed in new:
        out.print(f"  - url: {json.dumps(feed.url)}", soft_wrap=True)
        if feed.name:
            out.print(f"    name: {json.dumps(feed.name, ensure_ascii=False)}", soft_wrap=True)
    for problem in refused:
        err.print(_flagged("left out:", "yellow", problem))
    known = f" ({len(found) - len(new)} already in {config}, left out)" if len(new) < len(found) else ""
    err.print(f"{len(new)} feed(s){known}; append with: aggregator opml {file} >> {config}")


@app.command("eval")
@_friendly
def eval_(
    file: Annotated[Path, typer.Argument(help="Labeled JSONL: id, title, text, published, source, url, cluster, lang.")],
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write {id, story} per article to this JSONL file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    copies: Annotated[bool, typer.Option("--copies", help="Also derive seeded wire copies and score copy detection.")] = False,
) -> None:
    """Replay a labeled file through the dedup stage (daemon settings) and print P/R/F1."""
    from .tools.evaluate import evaluate, read_labeled

    # the daemon's settings when its config is there; the built-in defaults (the same values) otherwise
    given = _given_config(config)
    settings = given.settings.dedup if given else DedupSettings()
    if out_path is not None and (out_path.is_dir() or not out_path.parent.is_dir()):
        raise typer.BadParameter(f"{out_path}: not a file in an existing directory", param_hint="--out")
    records = read_labeled(file)
    with err.status(f"clustering {len(records):,} articles"):
        result = evaluate(records, settings)
    copy_scores = None
    if copies:
        from .tools.wirecopies import copy_detection

        with err.status("deriving wire copies and detecting them"):
            copy_scores = copy_detection(records, settings)
    if out_path is not None:
        try:
            with out_path.open("w", encoding="utf-8") as fh:
                for r in records:
                    fh.write(json.dumps({"id": r.id, "story": result.assignment[r.id]}, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise AggregatorError(f"{out_path}: cannot write the assignment: {exc.strerror or exc}") from None
    sc = result.scores
    data: dict[str, Any] = {
        "file": str(file), "articles": sc.items,
        "pairwise": {"precision": sc.pairwise_precision, "recall": sc.pairwise_recall, "f1": sc.pairwise_f1},
        "bcubed": {"precision": sc.bcubed_precision, "recall": sc.bcubed_recall, "f1": sc.bcubed_f1},
        "predicted_clusters": sc.predicted_clusters, "gold_clusters": sc.gold_clusters,
        "articles_per_second": round(result.articles_per_second, 1),
    }
    if copy_scores is not None:
        data["copies"] = {"articles": copy_scores.items, "precision": copy_scores.pairwise_precision,
                          "recall": copy_scores.pairwise_recall, "f1": copy_scores.pairwise_f1}
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(title=f"{file} ({sc.items} articles)")
    for col in ("", "precision", "recall", "F1"):
        table.add_column(col, justify="right")
    table.add_row("pairwise", f"{sc.pairwise_precision:.3f}", f"{sc.pairwise_recall:.3f}", f"{sc.pairwise_f1:.3f}")
    table.add_row("B-cubed", f"{sc.bcubed_precision:.3f}", f"{sc.bcubed_recall:.3f}", f"{sc.bcubed_f1:.3f}")
    if copy_scores is not None:
        table.add_row(f"copies ({copy_scores.items})", f"{copy_scores.pairwise_precision:.4f}", f"{copy_scores.pairwise_recall:.4f}",
                      f"{copy_scores.pairwise_f1:.4f}")
    out.print(table)
    out.print(f"{sc.predicted_clusters} stories predicted, {sc.gold_clusters} gold; {result.articles_per_second:.0f} articles/s")


@app.command()
@_friendly
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its config, database and digests.")] = Path("storage/demo"),
    hours: Annotated[int, typer.Option(help="Simulated hours to replay.", min=6, max=72)] = 72,
) -> None:
    """Replay a bundled news corpus through the real pipeline on 127.0.0.1 (no internet needed)."""
    from .tools.demo import run_demo

    started = _time.perf_counter()
    with Progress(TextColumn("simulating feeds"), BarColumn(), TextColumn("{task.completed}/{task.total} rounds"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("demo", total=None)
        result = run_demo(directory, progress=lambda done, total: progress.update(task, completed=done, total=total), hours=hours)
    agg = _open(result.config_path, reader=True)
    try:
        multi = [s for s in result.stories if len(s.sources) > 1]
        print_stories(multi, agg, f"{len(multi)} stories carried by several outlets (of {len(result.stories)} stories, "
                                  f"{result.articles} articles)")
        singles = [s for s in result.stories if len(s.sources) == 1]
        if singles:
            out.print(f"…and {len(singles)} single-source stories, e.g. " + "; ".join(s.title for s in singles[:3]))
    finally:
        agg.close()
    sc = result.scores
    out.print(f"\nagainst the corpus's own labels: B-cubed P/R/F1 {sc.bcubed_precision:.3f}/{sc.bcubed_recall:.3f}/{sc.bcubed_f1:.3f}, "
              f"pairwise F1 {sc.pairwise_f1:.3f}; {sc.predicted_clusters} stories for {sc.gold_clusters} events")
    out.print(f"{result.rounds} polling rounds, {result.requests} HTTP requests, {_time.perf_counter() - started:.1f}s")
    out.print("digests: " + ", ".join(str(p) for p in result.digests))
    out.print(f"explore: aggregator clusters --config {result.config_path} --since {hours // 24 + 1}d   (also: story ID, digest, feeds)")


if __name__ == "__main__":  # pragma: no cover
    app()
