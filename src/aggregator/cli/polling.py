"""The commands that poll and store: ``run`` (the daemon) and ``poll`` (one round). Both write, so
both hold the storage's one-writer lock (``factory.writer``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from .app import EXIT_ERROR, ConfigOption, app, err, flagged, friendly, out, to_poll

DAEMON_REFUSAL = "another aggregator daemon is already running on this storage"
POLL_REFUSAL = "a running aggregator daemon owns this storage and polls its feeds; stop it to poll by hand"


@app.command()
@friendly
def run(config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Run the daemon: poll every feed on its schedule, cluster, write the daily digest. Stops on SIGINT/SIGTERM."""
    import asyncio

    from ..factory import writer
    from ..schedule import Daemon

    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # APScheduler (every job) and httpx (every request) log at INFO: -vv shows them
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    with writer(to_poll(config), DAEMON_REFUSAL) as agg:
        asyncio.run(Daemon(agg).run())


@app.command()
@friendly
def poll(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    all_feeds: Annotated[bool, typer.Option("--all", help="Poll every enabled feed, not only those due.")] = False,
) -> None:
    """Run one polling round (the feeds that are due) and exit: for cron and scripts."""
    import asyncio

    from ..core import FEED_LOG
    from ..factory import writer

    if logging.getLogger().getEffectiveLevel() > logging.INFO:  # each failure or broken feed gets its line below: not a log line too
        logging.getLogger(FEED_LOG).setLevel(logging.ERROR)
    with writer(to_poll(config), POLL_REFUSAL) as agg:
        reports = asyncio.run(agg.poll_round(due_only=not all_feeds))
    failed = 0
    for r in reports:
        if r.error:
            failed += 1
            err().print(flagged("✗", "red", f"{r.feed_url}: {r.error}"))
        elif r.warning:
            err().print(flagged("!", "yellow", f"{r.feed_url}: {r.new_articles} new, but the feed is broken: {r.warning}"))
        else:
            state = "not modified" if r.not_modified else f"{r.new_articles} new"
            out().print(flagged("✓", "green", f"{r.feed_url}: {state}"))
    out().print(f"{len(reports)} feed(s) polled, {sum(r.new_articles for r in reports)} new article(s), {failed} failed")
    if reports and failed == len(reports):  # nothing reached: for cron and scripts, a failure (one failing feed of many is not)
        raise typer.Exit(EXIT_ERROR)
