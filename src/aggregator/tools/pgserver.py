"""A throwaway PostgreSQL server for the tests and the benchmarks: Debian's binaries, a data directory
in a temporary folder, listening on 127.0.0.1 only, gone when the block ends.

``find_binaries()`` says where ``initdb``/``pg_ctl`` are (or why not); ``TemporaryPostgres`` starts
one cluster and ``create_database()`` gives each test a fresh database in it. PostgreSQL refuses to
run as root: run as root (as CI does), the server runs as the ``postgres`` user that Debian's package
creates, and its folder is handed to that user.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    version: str


def find_binaries() -> Binaries | str:
    """Debian's newest PostgreSQL server binaries, or a one-line reason why there are none."""
    candidates = [Path(found).parent for found in (shutil.which("pg_ctl"),) if found]
    for pattern in SEARCH:
        candidates += sorted(Path("/").glob(pattern.lstrip("/")), key=lambda p: _major(p.parent.name), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return Binaries(bindir.resolve(), bindir.resolve().parent.name)
    return "PostgreSQL server binaries not found (initdb, pg_ctl): apt-get install postgresql (.ci/run does)"


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    """``with TemporaryPostgres() as pg: url = pg.create_database()``: a cluster of its own on a free
    loopback port (trust authentication, loopback only, fsync off: it holds test data)."""

    def __init__(self, binaries: Binaries | None = None) -> None:
        found = binaries or find_binaries()
        if isinstance(found, str):
            raise RuntimeError(found)
        self.binaries = found
        self.port = 0
        self._dir: Path | None = None
        self._names = count(1)
        self._as_user: list[str] = []

    @property
    def data_dir(self) -> Path:
        assert self._dir is not None, "the server is not started"
        return self._dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> TemporaryPostgres:
        self._dir = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
        if os.geteuid() == 0:  # initdb and postgres refuse root: run them as Debian's postgres user
            shutil.chown(self._dir, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self._dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self._dir / "server.log"), "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start")
        except RuntimeError:
            self._cleanup()
            raise
        log.info("PostgreSQL %s on 127.0.0.1:%d (%s)", self.binaries.version, self.port, self.data_dir)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            self._cleanup()

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_user, str(self.binaries.bindir / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, cwd=self._dir)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{program} failed ({done.returncode}): {' | '.join(tail)}")

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

