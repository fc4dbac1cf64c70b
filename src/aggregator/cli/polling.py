"""The commands that poll and store: ``run`` (the daemon) and ``poll`` (one round). Both write, so
both hold the storage's one-writer lock (``factory.writer``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from .app import EXIT_ERROR, ConfigOption, app, err, flagged, friendly, local, out, progress, to_poll
from .web import DEFAULT_HOST, DEFAULT_PORT, HostOption, PortOption, TokenOption, check_exposure

DAEMON_REFUSAL = "another aggregator daemon is already running on this storage"
POLL_REFUSAL = "a running aggregator daemon owns this storage and polls its feeds; stop it to poll by hand"


@app.command()
@friendly
def run(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    serve: Annotated[bool, typer.Option("--serve", help="Also serve the web pages and JSON API, as `serve` does.")] = False,
    host: HostOption = DEFAULT_HOST,
    port: PortOption = DEFAULT_PORT,
    token: TokenOption = None,
) -> None:
    """Run the daemon: poll every feed on its schedule, cluster, write the daily digest. Stops on SIGINT/SIGTERM."""
    import asyncio

    from ..factory import writer
    from ..schedule import Daemon

    if not serve and (host, port) != (DEFAULT_HOST, DEFAULT_PORT):
        raise typer.BadParameter("--host and --port are for --serve")
    if serve:
        check_exposure(host, token)
    cfg = to_poll(config)
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # APScheduler (every job) and httpx (every request) log at INFO: -vv shows them
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if not serve:
        with writer(cfg, DAEMON_REFUSAL) as agg:
            asyncio.run(Daemon(agg).run())
        return
    from .web import listen, quiet_access_log, serve_beside, server

    quiet_access_log()
    with writer(cfg, DAEMON_REFUSAL) as agg:  # (the lock first: a second daemon must not take the port either)
        sock, url = listen(host, port)
        logging.getLogger(__name__).info("serving %s", url)
        asyncio.run(serve_beside(Daemon(agg), server(cfg, host, token), sock))


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
        with progress("polling") as advance:
            reports = asyncio.run(agg.poll_round(due_only=not all_feeds, progress=lambda total, _report: advance(total)))
        now = agg.clock()
        waiting = [f for f in agg.feeds() if not f.disabled_reason and f.next_poll_at and f.next_poll_at > now]
        tz = agg.config.tz
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
    if waiting and not all_feeds:  # never a silent "0 polled": say who waits, until when, and how to poll them now
        backing_off = [f for f in waiting if f.error_count or (f.last_error and not f.last_success_at)]
        first = min(f.next_poll_at for f in waiting if f.next_poll_at)
        line = f"{len(waiting)} feed(s) not due yet (the next at {local(first, tz)})"
        if backing_off:
            until = max(f.next_poll_at for f in backing_off if f.next_poll_at)
            line += f", {len(backing_off)} of them backing off after errors (until {local(until, tz)}; `feeds` says why)"
        out().print(f"{line}: `poll --all` polls them now")
    if reports and failed == len(reports):  # nothing reached: for cron and scripts, a failure (one failing feed of many is not)
        raise typer.Exit(EXIT_ERROR)
