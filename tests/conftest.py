"""Shared fixtures: a real HTTP server on 127.0.0.1 with scripted routes and a request log (plain helpers: helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
from aggregator.tools.feedserver import LoopbackServer, Request, Response
from aggregator.tools.pgserver import TemporaryPostgres, find_binaries
from helpers import POSTGRES_ENV, write_config


class Routes:
    """path -> handler (or fixed Response); unknown paths answer 404."""

    def __init__(self) -> None:
        self.table: dict[str, Callable[[Request], Response] | Response] = {}

    def __setitem__(self, path: str, value: Callable[[Request], Response] | Response) -> None:
        self.table[path] = value

    def __call__(self, request: Request) -> Response:
        route = self.table.get(request.path) or self.table.get(request.path.split("?", 1)[0])
        if route is None:
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        return route(request) if callable(route) else route


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--database", choices=("sqlite", "postgresql"), default="sqlite",
                     help="the database every test's config uses: sqlite (default, a file in the test's folder) or postgresql "
                          "(a fresh database per test on a throwaway server; tests marked sqlite_only are skipped)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--database") == "postgresql":
        skip = pytest.mark.skip(reason="reads the SQLite file itself (run without --database=postgresql)")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    """One throwaway PostgreSQL server for the session (skips, saying why, without the binaries)."""
    found = find_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    with TemporaryPostgres(found) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: TemporaryPostgres) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return postgres_server.create_database()


@pytest.fixture(autouse=True)
def database_under_test(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``--database=postgresql``, every config ``write_config`` writes (the ``make_config`` fixture's
    too) names a PostgreSQL database of its own on the session's throwaway server."""
    if request.config.getoption("--database") == "postgresql" and "sqlite_only" not in request.keywords:
        monkeypatch.setenv(POSTGRES_ENV, request.getfixturevalue("postgres_server").url(""))


@pytest.fixture(autouse=True)
def no_aggregator_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's exported AGGREGATOR_* settings do not change what the tests see (the tests that
    are about them set their own). The browser tests' artifact directory is no setting: it stays."""
    import os

    for name in os.environ:
        if name.startswith("AGGREGATOR_") and name != "AGGREGATOR_TEST_ARTIFACTS":
            monkeypatch.delenv(name)


@pytest.fixture
def routes() -> Routes:
    return Routes()


@pytest.fixture
def server(routes: Routes) -> Iterator[LoopbackServer]:
    with LoopbackServer(routes) as srv:
        yield srv


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(feeds: list[dict[str, object]], **settings: object) -> Config:
        return load_config(write_config(tmp_path, feeds, **settings))

    return make
