"""Plain helpers shared by the test modules (the fixtures stay in conftest.py).

``cli(*args)`` runs ``aggregator ARGS`` in this process with typer's test runner; ``aggregator(*args)``
runs it as a real subprocess, for the tests where the process is the point (the daemon, signals, a
lock held by another process). Both return a ``subprocess.CompletedProcess`` (returncode, stdout, stderr).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WIDE = {"COLUMNS": "200"}  # wide enough that no title is cut or wrapped in a table


POSTGRES_ENV = "TEST_POSTGRES_URL"  # set under ``pytest --database=postgresql``: the throwaway server's URL, without a database


def write_config(directory: Path, feeds: list[dict[str, object]], **settings: object) -> Path:
    """A config file in ``directory`` keeping its storage there too (under ``--database=postgresql``,
    its database is a PostgreSQL database of its own, one per directory)."""
    if os.environ.get(POSTGRES_ENV) and "database_url" not in settings:
        settings["database_url"] = postgres_database(directory)
    body = {"settings": {"storage": ".", "allow_hosts": ["127.0.0.1"], **settings}, "feeds": feeds}
    path = directory / "feeds.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def postgres_database(directory: Path) -> str:
    """The PostgreSQL database of the test storage in ``directory`` (created on first use): its URL."""
    import psycopg

    server = os.environ[POSTGRES_ENV]
    name = "t_" + hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:24]
    with psycopg.connect(server.replace("+psycopg", "") + "postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return server + name


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    """The rows of a read query on a test storage's database: the SQLite file ``db``, or the database
    the config beside it names (``--database=postgresql``); none while it does not exist yet."""
    config = db.parent / "feeds.yaml"
    url = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("settings", {}).get("database_url") if config.exists() else None
    if url:
        import psycopg

        try:
            with psycopg.connect(url.replace("+psycopg", "")) as conn:
                return conn.execute(query).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
            return []
    if not db.exists():
        return []
    with sqlite3.connect(db) as sconn:
        try:
            return sconn.execute(query).fetchall()
        except sqlite3.OperationalError:
            return []


def aggregator(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m aggregator ARGS`` as a separate process (about 1 s of imports per call)."""
    return subprocess.run([sys.executable, "-m", "aggregator", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **WIDE})


@contextmanager
def fresh_process_logging() -> Iterator[None]:
    """Logging as a new process starts it, for the block: a root logger without handlers at WARNING
    (so the app callback's ``logging.basicConfig`` writes to the runner's stderr, as it would to the
    process's), and afterwards every logger's level and the root's handlers as they were (pytest's
    capture handlers included; ``poll`` and ``run`` set levels that must not leak into later tests)."""
    from aggregator.core import FEED_LOG

    for name in (FEED_LOG, "aggregator", "apscheduler", "httpx"):  # the loggers the CLI tunes, so that they are restored too
        logging.getLogger(name)
    root = logging.getLogger()
    loggers = [root, *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    levels = {lg: lg.level for lg in loggers}
    handlers = root.handlers[:]
    root.handlers = []
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers = handlers
        for lg, level in levels.items():
            lg.setLevel(level)


def cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``aggregator ARGS`` in this process: the exit code, stdout and stderr the command gives as a
    process, without a new interpreter's imports. An exception the CLI lets escape is raised here
    (a process would print a traceback, which the CLI promises never to do)."""
    from typer.testing import CliRunner

    from aggregator.cli import app

    with fresh_process_logging():
        result = CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})}, catch_exceptions=False, prog_name="aggregator")
    return subprocess.CompletedProcess(["aggregator", *args], result.exit_code, result.stdout, result.stderr)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll ``predicate`` every 0.2 s until it holds; fail naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def count(db: Path, table: str) -> int:
    """Rows in a table of a test storage's database another process writes (0 while there is none yet)."""
    found = rows(db, f"select count(*) from {table}")
    return int(found[0][0]) if found else 0


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_site() -> Iterator[tuple[Any, Any]]:
    """The demo's outlets and pages served on 127.0.0.1, every article already published: (server, site)."""
    from datetime import datetime, timedelta, timezone

    from aggregator.tools.demo import DemoSite, load_corpus
    from aggregator.tools.feedserver import LoopbackServer

    start = datetime.now(timezone.utc) - timedelta(hours=72)
    site = DemoSite(load_corpus(), start, feed_items=100)
    site.now = start + timedelta(hours=72)
    with LoopbackServer(site) as server:
        site.base_url = server.base_url
        yield server, site
