"""Fetcher against a real HTTP server on 127.0.0.1: validators, limits, redirects, statuses, deadlines."""

from __future__ import annotations

import asyncio
import gzip
import inspect
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from aggregator.config import FetchSettings
from aggregator.errors import BodyTooLarge, FetchError, HTTPStatusError
from aggregator.fetch import Fetcher, HostPools, tls_context
from aggregator.models import FetchResult
from aggregator.netguard import NetGuard
from aggregator.tools.feedserver import LoopbackServer, Request, Response, conditional
from conftest import Routes

# One loopback server for the whole module: LoopbackServer.stop() waits out serve_forever's 0.5 s poll, which
# per test would cost more than the tests themselves. `routes` and `server` keep conftest's interface and are
# reset for every test.


@pytest.fixture(scope="module")
def _servers() -> Iterator[tuple[LoopbackServer, Routes, LoopbackServer, Routes]]:
    table, other_table = Routes(), Routes()
    with LoopbackServer(table) as srv, LoopbackServer(other_table) as other:
        yield srv, table, other, other_table


def _reset(srv: LoopbackServer, table: Routes) -> None:
    table.table.clear()
    with srv._log_lock:
        srv.requests.clear()


@pytest.fixture
def routes(_servers) -> Routes:
    srv, table, other, other_table = _servers
    _reset(srv, table)
    _reset(other, other_table)
    return table


@pytest.fixture
def server(_servers, routes: Routes) -> LoopbackServer:
    return _servers[0]


@pytest.fixture
def other_server(_servers, routes: Routes) -> tuple[LoopbackServer, Routes]:
    return _servers[2], _servers[3]


RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
XML = {"Content-Type": "application/rss+xml"}


def make_fetcher(settings: FetchSettings) -> Fetcher:
    """A Fetcher allowed to reach the loopback test server (loopback is refused by default where supported)."""
    if "allow_hosts" in inspect.signature(Fetcher).parameters:
        return Fetcher(settings, allow_hosts=("127.0.0.1",))
    return Fetcher(settings)


def fetch(url: str, settings: FetchSettings | None = None, **kw: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with make_fetcher(settings or FetchSettings()) as fetcher:
            return await fetcher.fetch_feed(url, **kw)

    return asyncio.run(go())


def fetch_error(url: str, settings: FetchSettings | None = None, error: type[Exception] = FetchError) -> Any:
    with pytest.raises(error) as info:
        fetch(url, settings)
    return info.value


# -- basics ---------------------------------------------------------------------------------------


def test_plain_get(server, routes) -> None:
    routes["/feed"] = Response(200, RSS, {**XML, "ETag": '"abc"', "Last-Modified": "Tue, 05 Mar 2024 11:00:00 GMT"})
    result = fetch(server.url("/feed"))
    assert result.status == 200 and not result.not_modified
    assert result.content == RSS
    assert result.etag == '"abc"'
    assert result.last_modified == "Tue, 05 Mar 2024 11:00:00 GMT"
    assert result.headers["content-type"] == "application/rss+xml"
    assert result.final_url == result.url == server.url("/feed")
    assert result.permanent_url is None


def test_user_agent_names_the_project_and_accept_asks_for_feeds(server, routes) -> None:
    routes["/feed"] = Response(200, RSS, XML)
    fetch(server.url("/feed"))
    headers = server.requests[0].headers
    assert headers["user-agent"].startswith("aggregator/")
    assert "http" in headers["user-agent"]  # a contact URL for publishers
    assert "application/rss+xml" in headers["accept"] and "application/atom+xml" in headers["accept"]


def test_custom_user_agent(server, routes) -> None:
    routes["/feed"] = Response(200, RSS, XML)
    fetch(server.url("/feed"), FetchSettings(user_agent="aggregator-test/9 (+mailto:ops@example.org)"))
    assert server.requests[0].headers["user-agent"] == "aggregator-test/9 (+mailto:ops@example.org)"


def test_unconditional_get_sends_no_validators(server, routes) -> None:
    routes["/feed"] = Response(200, RSS, XML)
    fetch(server.url("/feed"))
    assert "if-none-match" not in server.requests[0].headers
    assert "if-modified-since" not in server.requests[0].headers


def test_conditional_get_and_304(server, routes) -> None:
    modified = datetime(2024, 3, 5, 11, 0, tzinfo=timezone.utc)
    routes["/feed"] = lambda req: conditional(req, RSS, "application/rss+xml", modified)
    first = fetch(server.url("/feed"))
    assert first.status == 200 and first.etag and first.last_modified
    second = fetch(server.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    sent = server.requests[1].headers
    assert sent["if-none-match"] == first.etag
    assert sent["if-modified-since"] == first.last_modified == "Tue, 05 Mar 2024 11:00:00 GMT"
    assert second.status == 304 and second.not_modified
    assert second.content == b""


def test_stale_etag_gets_the_full_body(server, routes) -> None:
    routes["/feed"] = lambda req: conditional(req, RSS, "application/rss+xml")
    result = fetch(server.url("/feed"), etag='"stale"')
    assert result.status == 200 and result.content == RSS


# -- body cap -------------------------------------------------------------------------------------


def test_body_over_the_cap(server, routes) -> None:
    routes["/big"] = Response(200, b"x" * (2 * 1024 * 1024), XML)
    err = fetch_error(server.url("/big"), FetchSettings(max_body_bytes=100_000), BodyTooLarge)
    assert "100000" in str(err)
    assert isinstance(err, FetchError)


def test_body_at_the_cap_is_fine(server, routes) -> None:
    routes["/exact"] = Response(200, b"y" * 100_000, XML)
    assert len(fetch(server.url("/exact"), FetchSettings(max_body_bytes=100_000)).content) == 100_000


_BOMB: bytes | None = None


def _bomb() -> bytes:
    global _BOMB
    if _BOMB is None:
        _BOMB = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=6)
    return _BOMB


def test_gzip_bomb_stops_at_the_decoded_cap(server, routes) -> None:
    bomb = _bomb()
    assert len(bomb) < 100_000  # small on the wire: only the decoded size can catch it
    routes["/bomb"] = Response(200, bomb, {**XML, "Content-Encoding": "gzip"})
    start = time.monotonic()
    fetch_error(server.url("/bomb"), FetchSettings(max_body_bytes=100_000), BodyTooLarge)
    assert time.monotonic() - start < 3.0


def test_small_gzip_body_is_decoded(server, routes) -> None:
    routes["/gz"] = Response(200, gzip.compress(RSS), {**XML, "Content-Encoding": "gzip"})
    assert fetch(server.url("/gz")).content == RSS


def test_corrupt_gzip_is_a_fetch_error(server, routes) -> None:
    routes["/gz"] = Response(200, b"this is not gzip at all", {**XML, "Content-Encoding": "gzip"})
    fetch_error(server.url("/gz"))


# -- redirects ------------------------------------------------------------------------------------


def redirect(status: int, location: str) -> Response:
    return Response(status, b"", {"Location": location})


def test_permanent_redirect_chain_sets_permanent_url(server, routes) -> None:
    routes["/old"] = redirect(301, "/older")
    routes["/older"] = redirect(308, server.url("/new"))
    routes["/new"] = Response(200, RSS, XML)
    result = fetch(server.url("/old"))
    assert result.content == RSS
    assert result.url == server.url("/old")
    assert result.final_url == result.permanent_url == server.url("/new")
    assert server.paths() == ["/old", "/older", "/new"]


@pytest.mark.parametrize("statuses", [(302,), (307,), (303,), (301, 302), (302, 301)])
def test_temporary_hop_means_no_permanent_url(server, routes, statuses: tuple[int, ...]) -> None:
    for i, status in enumerate(statuses):
        routes[f"/r{i}"] = redirect(status, f"/r{i + 1}")
    routes[f"/r{len(statuses)}"] = Response(200, RSS, XML)
    result = fetch(server.url("/r0"))
    assert result.final_url == server.url(f"/r{len(statuses)}")
    assert result.permanent_url is None


def test_redirect_loop(server, routes) -> None:
    routes["/a"] = redirect(301, "/b")
    routes["/b"] = redirect(302, "/a")
    err = fetch_error(server.url("/a"))
    assert "loop" in str(err)
    assert len(server.requests) <= 3


def test_too_many_redirects(server, routes) -> None:
    for i in range(10):
        routes[f"/hop{i}"] = redirect(302, f"/hop{i + 1}")
    routes["/hop10"] = Response(200, RSS, XML)
    err = fetch_error(server.url("/hop0"), FetchSettings(max_redirects=3))
    assert "redirects" in str(err)
    assert len(server.requests) == 4  # the first request and three hops, never a fifth


def test_exactly_max_redirects_is_allowed(server, routes) -> None:
    for i in range(3):
        routes[f"/hop{i}"] = redirect(301, f"/hop{i + 1}")
    routes["/hop3"] = Response(200, RSS, XML)
    assert fetch(server.url("/hop0"), FetchSettings(max_redirects=3)).content == RSS


@pytest.mark.parametrize("location", ["ftp://example.org/feed", "javascript:alert(1)", "file:///etc/passwd"])
def test_redirect_to_non_http_is_refused(server, routes, location: str) -> None:
    routes["/r"] = redirect(302, location)
    err = fetch_error(server.url("/r"))
    assert not isinstance(err, HTTPStatusError)
    # httpx itself rejects 'javascript:alert(1)' while building the next request; either way nothing else is contacted
    assert "non-http" in str(err) or "InvalidURL" in str(err)
    assert server.paths() == ["/r"]


def test_redirect_without_location(server, routes) -> None:
    routes["/r"] = Response(301, b"", {})
    assert "Location" in str(fetch_error(server.url("/r")))


# -- statuses -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500, 410, 403])
def test_error_statuses(server, routes, status: int) -> None:
    routes["/feed"] = Response(status, b"nope", {"Content-Type": "text/plain"})
    err = fetch_error(server.url("/feed"), error=HTTPStatusError)
    assert err.status == status
    assert err.url == server.url("/feed")
    assert f"HTTP {status}" in str(err)


def test_unknown_path_is_404(server, routes) -> None:
    assert fetch_error(server.url("/missing"), error=HTTPStatusError).status == 404


def test_redirect_to_an_error_reports_the_error(server, routes) -> None:
    routes["/r"] = redirect(301, "/gone")
    routes["/gone"] = Response(410, b"", {})
    assert fetch_error(server.url("/r"), error=HTTPStatusError).status == 410


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_exposed(server, routes, status: int) -> None:
    routes["/busy"] = Response(status, b"busy", {"Retry-After": "120"})
    err = fetch_error(server.url("/busy"), error=HTTPStatusError)
    assert (err.status, err.retry_after) == (status, "120")


def test_connection_refused_is_a_fetch_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    err = fetch_error(f"http://127.0.0.1:{port}/feed", FetchSettings(connect_timeout=1))
    assert not isinstance(err, HTTPStatusError)


# -- time limits ----------------------------------------------------------------------------------


def _stalling(seconds: float, release: threading.Event):
    """A route that answers only after ``seconds`` (at most 3 s), or as soon as the test releases it."""

    def handler(req: Request) -> Response:
        release.wait(min(seconds, 3.0))
        return Response(200, RSS, XML)

    return handler


def test_total_deadline(server, routes) -> None:
    release = threading.Event()
    routes["/slow"] = _stalling(3, release)
    start = time.monotonic()
    try:
        err = fetch_error(server.url("/slow"), FetchSettings(total_deadline=0.5))
    finally:
        release.set()
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, f"took {elapsed:.2f}s"
    assert "0.5" in str(err)


def test_read_timeout(server, routes) -> None:
    release = threading.Event()
    routes["/slow"] = _stalling(2, release)
    start = time.monotonic()
    try:
        fetch_error(server.url("/slow"), FetchSettings(read_timeout=0.3))
    finally:
        release.set()
    assert time.monotonic() - start < 1.5


# -- concurrency ----------------------------------------------------------------------------------


class InFlight:
    """A route handler that sleeps and records the largest number of simultaneous requests."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.now = 0
        self.max = 0
        self._lock = threading.Lock()

    def __call__(self, req: Request) -> Response:
        with self._lock:
            self.now += 1
            self.max = max(self.max, self.now)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.now -= 1
        return Response(200, RSS, XML)


def run_concurrently(urls: list[str], settings: FetchSettings) -> list[FetchResult]:
    async def go() -> list[FetchResult]:
        async with make_fetcher(settings) as fetcher:
            return list(await asyncio.gather(*(fetcher.fetch_feed(u) for u in urls)))

    return asyncio.run(go())


def test_per_host_concurrency(server, routes) -> None:
    counter = InFlight(0.3)
    routes["/feed"] = counter
    start = time.monotonic()
    results = run_concurrently([server.url(f"/feed?n={i}") for i in range(6)], FetchSettings(per_host_concurrency=2))
    elapsed = time.monotonic() - start
    assert all(r.status == 200 for r in results)
    assert len(server.requests) == 6
    assert counter.max <= 2
    assert counter.max == 2  # the limit is a limit, not serialisation
    assert elapsed >= 0.85  # three rounds of 0.3 s


def test_global_concurrency(server, routes) -> None:
    counter = InFlight(0.12)
    routes["/feed"] = counter
    run_concurrently([server.url(f"/feed?n={i}") for i in range(3)], FetchSettings(per_host_concurrency=10, max_concurrency=1))
    assert counter.max == 1


def test_hosts_do_not_share_a_limit(server, routes, other_server) -> None:
    two, two_routes = other_server
    counter = InFlight(0.3)  # one counter across both hosts
    routes["/f"] = counter
    two_routes["/f"] = counter
    run_concurrently([server.url("/f"), server.url("/f?again"), two.url("/f")], FetchSettings(per_host_concurrency=1))
    assert counter.max == 2, "two hosts with a per-host limit of 1 should be fetched side by side, one request each"


def test_a_host_at_its_limit_does_not_hold_the_global_slots(server, routes, other_server) -> None:
    """Six feeds of one site listed first must not keep the second site waiting: a request queues
    for its host before it takes one of the global slots."""
    two, two_routes = other_server
    counter = InFlight(0.2)  # one counter across both hosts
    arrivals: list[str] = []

    def handler(name: str) -> Any:
        def answer(request: Request) -> Response:
            arrivals.append(name)
            return counter(request)

        return answer

    routes["/f"] = handler("one")
    two_routes["/f"] = handler("two")
    urls = [server.url(f"/f?n={i}") for i in range(6)] + [two.url(f"/f?n={i}") for i in range(2)]
    run_concurrently(urls, FetchSettings(per_host_concurrency=2, max_concurrency=4))
    assert sorted(arrivals[:4]) == ["one", "one", "two", "two"], f"second host served late: {arrivals}"
    assert counter.max == 4


def test_connections_are_kept_across_304s_and_hosts_taking_turns(server, routes, other_server) -> None:
    two, two_routes = other_server
    routes["/f"] = lambda request: conditional(request, RSS, "application/rss+xml")
    two_routes["/f"] = lambda request: conditional(request, RSS, "application/rss+xml")
    etag = fetch(server.url("/f")).etag
    before = (server.connections, two.connections)

    async def go() -> list[FetchResult]:
        async with make_fetcher(FetchSettings(per_host_concurrency=1)) as fetcher:
            out = []
            for i in range(8):  # the hosts take turns, each answering 304 (no body to read)
                for srv in (server, two):
                    out.append(await fetcher.fetch_feed(srv.url(f"/f?n={i}"), etag=etag))
            return out

    results = asyncio.run(go())
    assert [r.status for r in results] == [304] * 16
    assert (server.connections - before[0], two.connections - before[1]) == (1, 1), "one kept-alive connection per host"


def test_idle_host_pools_are_closed(server, routes, other_server) -> None:
    two, two_routes = other_server
    routes["/f"] = Response(200, RSS, XML)
    two_routes["/f"] = Response(200, RSS, XML)

    async def go() -> list[int]:
        pools = HostPools(NetGuard.from_allow_list(["127.0.0.1"]), 2, tls_context(FetchSettings()), keepalive_s=0.2)
        async with httpx.AsyncClient(transport=pools) as client:
            await client.get(server.url("/f"))
            await client.get(two.url("/f"))
            open_before = len(pools)
            await asyncio.sleep(0.3)
            await client.get(two.url("/f"))  # the first host has been idle longer than the keep-alive
            return [open_before, len(pools)]

    assert asyncio.run(go()) == [2, 1]


def test_fetch_page_uses_an_html_accept(server, routes) -> None:
    routes["/article"] = Response(200, b"<html><body>x</body></html>", {"Content-Type": "text/html"})

    async def go() -> FetchResult:
        async with make_fetcher(FetchSettings()) as fetcher:
            return await fetcher.fetch_page(server.url("/article"))

    result = asyncio.run(go())
    assert result.content.startswith(b"<html>")
    assert server.requests[0].headers["accept"].startswith("text/html")


