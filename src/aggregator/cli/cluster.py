"""The commands of a cluster on PostgreSQL (``aggregator.cluster``): ``worker`` (any number, on any
machine) and ``clusterer`` (one at a time; others stand by and take over)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import ConfigError
from .app import EXIT_ERROR, ConfigOption, app, err, friendly, print_json, to_poll

if TYPE_CHECKING:
    from ..config import Config

NEEDS_POSTGRESQL = "workers and the clusterer share a PostgreSQL database: set settings.database_url to postgresql+psycopg://..."


def _cluster_config(config_path: Path) -> Config:
    from ..store.locks import is_postgresql

    cfg = to_poll(config_path)
    if not is_postgresql(cfg.database_url):
        raise ConfigError(f"{cfg.path or config_path}: {NEEDS_POSTGRESQL}")
    for module in ("psycopg", "procrastinate"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"{module} is not installed: pip install 'aggregator[postgres]' for workers and the clusterer")
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        for name in ("apscheduler", "httpx", "procrastinate"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return cfg


@app.command()
@friendly
def worker(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    concurrency: Annotated[int | None, typer.Option(min=1, max=1000, help="Feeds this worker polls at once (default: cluster.worker_concurrency).")] = None,
    name: Annotated[str | None, typer.Option(help="The worker's name in the job queue and the logs (default: host:pid).")] = None,
) -> None:
    """Poll due feeds for a cluster: fetch, parse and extract, and leave each answer for the clusterer. Stops on SIGINT/SIGTERM."""
    import asyncio

    from ..cluster.jobs import Worker, run_worker
    from ..factory import make_aggregator, process_name

    cfg = _cluster_config(config)
    agg = make_aggregator(cfg, sync=False)
    try:
        asyncio.run(run_worker(Worker(agg), concurrency or cfg.settings.cluster.worker_concurrency, name or process_name("worker")))
    finally:
        agg.close()


@app.command()
@friendly
def clusterer(config: ConfigOption = DEFAULT_CONFIG_PATH) -> None:
    """Store the workers' answers and place their articles into stories, write the digest: one at a
    time per database; started while one runs, it stands by and takes over when that one stops."""
    import asyncio
    import signal
    import threading

    from ..cluster.clusterer import stand_by
    from ..factory import make_aggregator, process_name
    from ..schedule import Daemon
    from ..store.locks import WRITER, DatabaseLock

    cfg = _cluster_config(config)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    with DatabaseLock(cfg.database_url, WRITER, holder=process_name("aggregator clusterer")) as lock:
        try:
            if not stand_by(lock, stop):
                return
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        agg = make_aggregator(cfg)
        try:
            daemon = Daemon(agg, inbox=True, owner=lock.held)
            asyncio.run(daemon.run())
        finally:
            agg.close()
    if daemon.lost_lock:
        err("error: the clusterer lost its lock on the database and stopped; start it again (it stands by if another took over)")
        raise typer.Exit(EXIT_ERROR)


@app.command("cluster-status")
@friendly
def cluster_status(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """What the cluster is doing: the clusterer, the workers alive, the poll jobs, the inbox's backlog, the feeds due."""
    from ..cluster.status import cluster_status as read_status
    from ..factory import make_aggregator

    cfg = _cluster_config(config)
    agg = make_aggregator(cfg, sync=False)
    try:
        status = read_status(agg, agg.clock())
    finally:
        agg.close()
    if as_json:
        print_json(status.as_dict())
        return
    jobs = ", ".join(f"{n} {s}" for s, n in sorted(status.jobs.items())) or "none"
    oldest = f", the oldest {status.inbox_oldest_s:.0f} s old" if status.inbox_oldest_s is not None else ""
    typer.echo(f"clusterer: {status.clusterer or 'none running (answers wait in the inbox)'}")
    typer.echo(f"workers: {status.workers_alive} alive" + (f", {status.workers_silent} silent (taken for dead)" if status.workers_silent else ""))
    typer.echo(f"poll jobs: {jobs}")
    typer.echo(f"inbox: {status.inbox_answers} answer(s), {status.inbox_articles} article(s){oldest}")
    typer.echo(f"feeds due: {status.feeds_due}")
