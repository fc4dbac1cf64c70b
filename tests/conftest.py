"""Shared fixtures: a real HTTP server on 127.0.0.1 with scripted routes and a request log (plain helpers: helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aggregator.config import Config, load_config
from aggregator.tools.feedserver import LoopbackServer, Request, Response
from helpers import write_config


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
