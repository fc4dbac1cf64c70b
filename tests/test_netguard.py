"""SSRF guard: nothing reaches a non-public address unless allowed, checked at connect time on every hop."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from aggregator.config import FetchSettings
from aggregator.errors import FetchError
from aggregator.fetch import Fetcher
from aggregator.netguard import NetGuard, why_blocked
from aggregator.tools.feedserver import Response


@pytest.mark.parametrize(
    "address, blocked",
    [
        ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.10", True), ("172.16.5.4", True),
        ("169.254.169.254", True), ("224.0.0.1", True), ("0.0.0.0", True), ("240.0.0.1", True),
        ("100.64.0.1", True), ("::1", True), ("fe80::1", True), ("::ffff:127.0.0.1", True),
        ("93.184.216.34", False), ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_default_policy_blocks_every_non_public_address(address, blocked):
    assert (why_blocked(ipaddress.ip_address(address)) is not None) is blocked


def test_allow_list_accepts_names_addresses_and_networks():
    guard = NetGuard.from_allow_list(["feeds.internal", "127.0.0.1", "10.1.0.0/16"])
    guard.check("feeds.internal", ipaddress.ip_address("10.9.9.9"))
    guard.check("127.0.0.1", ipaddress.ip_address("127.0.0.1"))
    guard.check("10.1.200.3", ipaddress.ip_address("10.1.200.3"))
    with pytest.raises(Exception, match="private address"):
        guard.check("10.2.0.1", ipaddress.ip_address("10.2.0.1"))


def test_an_allowed_address_is_opened_to_urls_naming_it_not_to_every_name_resolving_there():
    named = {"feeds.lan"}
    guard = NetGuard.from_allow_list(["127.0.0.1", "10.1.0.0/16", "wiki.internal"], named=lambda: named)
    for host, ip in [("anything.example", "127.0.0.1"), ("evil.example", "10.1.200.3"), ("localhost", "127.0.0.1")]:
        with pytest.raises(Exception, match=f"blocked: {host} resolves to {ip}, .* opens only to URLs naming it"):
            guard.check(host, ipaddress.ip_address(ip))
    guard.check("feeds.lan", ipaddress.ip_address("10.1.0.7"))  # a feed host the config names
    guard.check("FEEDS.LAN", ipaddress.ip_address("10.1.0.7"))
    guard.check("wiki.internal", ipaddress.ip_address("127.0.0.1"))  # a name allow_hosts lists
    named.clear()  # the config in force changed (a hot reload): its feed hosts are read at each check
    with pytest.raises(Exception, match="blocked: feeds.lan resolves to"):
        guard.check("feeds.lan", ipaddress.ip_address("10.1.0.7"))
    with pytest.raises(Exception, match="private address"):
        NetGuard.from_allow_list([], named=lambda: {"feeds.lan"}).check("feeds.lan", ipaddress.ip_address("10.1.0.7"))
    guard.check("news.example", ipaddress.ip_address("93.184.216.34"))  # public addresses: as before


def test_a_redirect_to_a_name_resolving_to_an_allowed_address_is_refused(server, routes):
    """allow_hosts: [127.0.0.1] opens http://127.0.0.1:PORT/, not a redirect to http://localhost:PORT/
    (a name of anyone's choosing can resolve to 127.0.0.1), unless the name is listed too."""
    port = server.url("/").split(":")[2].split("/")[0]
    routes["/feed"] = Response(302, b"", {"Location": f"http://localhost:{port}/feed2"})
    routes["/feed2"] = Response(200, b"<rss/>")
    with pytest.raises(FetchError, match="blocked: localhost resolves to .*settings.allow_hosts"):
        fetch(server.url("/feed"), ["127.0.0.1"])
    assert server.paths() == ["/feed"]
    fetch(server.url("/feed"), ["127.0.0.1", "localhost"])
    assert server.paths() == ["/feed", "/feed", "/feed2"]


def test_the_configs_feed_hosts_may_reach_the_addresses_allow_hosts_opens(server, routes, make_config):
    """A name the config gives as a feed's host is "named by the config": a redirect to it is
    followed; a redirect to another name resolving to the same address is not."""
    from aggregator.factory import make_aggregator

    port = server.url("/").split(":")[2].split("/")[0]
    rss = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
    routes["/a.xml"] = Response(302, b"", {"Location": f"http://localhost:{port}/b.xml"})
    routes["/b.xml"] = Response(200, rss, {"Content-Type": "application/rss+xml"})

    def poll(feeds: list[dict[str, object]]) -> dict[str, str | None]:
        agg = make_aggregator(make_config(feeds, allow_hosts=["127.0.0.1", "::1"], extract={"fetch_pages": False}))
        try:
            return {r.feed_url.rsplit("/", 1)[-1]: r.error for r in asyncio.run(agg.poll_round(due_only=False))}
        finally:
            agg.close()

    alone = [{"url": server.url("/a.xml"), "name": "A"}]
    assert "blocked: localhost resolves to" in (poll(alone)["a.xml"] or "")
    named = [*alone, {"url": f"http://localhost:{port}/b.xml", "name": "B"}]
    assert poll(named) == {"a.xml": None, "b.xml": None}


def fetch(url: str, allow: list[str]) -> None:
    async def go() -> None:
        async with Fetcher(FetchSettings(), allow) as fetcher:
            await fetcher.fetch_feed(url)

    asyncio.run(go())


def test_loopback_feed_is_refused_without_allow_list_and_no_request_is_made(server, routes):
    routes["/feed"] = Response(200, b"<rss/>")
    with pytest.raises(FetchError, match="blocked: 127.0.0.1 is a loopback address"):
        fetch(server.url("/feed"), [])
    with pytest.raises(FetchError, match="blocked: localhost resolves to"):
        fetch(server.url("/feed").replace("127.0.0.1", "localhost"), [])
    assert server.paths() == []
    fetch(server.url("/feed"), ["127.0.0.1"])
    assert server.paths() == ["/feed"]


def test_redirect_to_metadata_address_is_blocked_at_the_hop(server, routes):
    routes["/feed"] = Response(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(FetchError, match="169.254.169.254 is a link-local address"):
        fetch(server.url("/feed"), ["127.0.0.1"])
    assert server.paths() == ["/feed"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/feed", "gopher://127.0.0.1:70/"])
def test_non_http_schemes_are_never_fetched(url):
    with pytest.raises(FetchError, match="only http and https"):
        fetch(url, ["127.0.0.1"])


def test_redirect_to_non_http_scheme_is_refused(server, routes):
    routes["/feed"] = Response(301, b"", {"Location": "file:///etc/passwd"})
    with pytest.raises(FetchError, match="non-http"):
        fetch(server.url("/feed"), ["127.0.0.1"])



@pytest.mark.parametrize(
    "current, location, refusal",
    [
        ("https://news.example/feed", "http://news.example/feed", "https to plain http"),
        ("https://news.example/feed", "HTTP://other.example/x", "https to plain http"),
        ("http://news.example/feed", "https://news.example/feed", None),  # upgrades are fine
        ("https://news.example/a", "/b", None),  # relative stays https
        ("http://news.example/a", "javascript:alert(1)", "non-http"),
        ("http://news.example/a", None, "without a Location"),
        ("http://news.example/a", "/a", "redirect loop"),
    ],
)
def test_redirect_rules(current, location, refusal):
    from aggregator.fetch import redirect_target

    _, why = redirect_target(current, location, {current})
    assert (why is None) if refusal is None else (refusal in why)


class FakeDNS:
    """The outside internet's DNS, faked: a name resolves to the given answers."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = [ipaddress.ip_address(a) for a in answers]

    async def __call__(self, host: str, port: int, timeout: float | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return self.answers


@pytest.mark.parametrize("answers", [["93.184.216.34", "127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"], ["::ffff:192.168.1.1"]])
def test_every_dns_answer_is_checked_and_the_connection_pinned(monkeypatch, answers):
    from aggregator.netguard import BlockedAddress, GuardedBackend

    connected: list[str] = []

    class Recorder:
        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
            connected.append(host)
            raise AssertionError("must not connect")

    backend = GuardedBackend(NetGuard(), inner=Recorder())  # type: ignore[arg-type]
    monkeypatch.setattr(GuardedBackend, "_resolve", staticmethod(FakeDNS(answers)))
    with pytest.raises(BlockedAddress, match="feeds.example resolves to"):
        asyncio.run(backend.connect_tcp("feeds.example", 80))
    assert connected == []


def test_a_public_answer_is_connected_by_address_not_by_name(monkeypatch):
    from aggregator.netguard import GuardedBackend

    connected: list[str] = []

    class Recorder:
        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # type: ignore[no-untyped-def]
            connected.append(host)
            return "stream"

    backend = GuardedBackend(NetGuard(), inner=Recorder())  # type: ignore[arg-type]
    monkeypatch.setattr(GuardedBackend, "_resolve", staticmethod(FakeDNS(["93.184.216.34"])))
    assert asyncio.run(backend.connect_tcp("feeds.example", 80)) == "stream"
    assert connected == ["93.184.216.34"]  # pinned: a second DNS answer cannot change where we connect


def test_each_answer_is_tried_in_turn_when_the_first_refuses(monkeypatch, server, routes):
    """A name answering ::1 first and 127.0.0.1 second (dual-stack hosts, many /etc/hosts files)
    reaches a server listening on 127.0.0.1 only: the refused first address is not the end."""
    from aggregator.netguard import GuardedBackend

    routes["/feed.xml"] = Response(200, b"<rss version='2.0'><channel><title>T</title></channel></rss>", {"Content-Type": "application/rss+xml"})
    monkeypatch.setattr(GuardedBackend, "_resolve", staticmethod(FakeDNS(["::1", "127.0.0.1"])))
    port = server.url("/").split(":")[2].split("/")[0]

    async def go() -> int:
        async with Fetcher(FetchSettings(), allow_hosts=["feeds.test"]) as fetcher:
            return (await fetcher.fetch_feed(f"http://feeds.test:{port}/feed.xml")).status

    assert asyncio.run(go()) == 200


@pytest.mark.parametrize("entry", ["127.0.0.1:8080", "http://127.0.0.1", "*.example.org", "feeds.example.org."])
def test_allow_list_entries_in_other_forms_are_refused(entry):
    with pytest.raises(ValueError, match="not a host name, an address or a network"):
        NetGuard.from_allow_list([entry])
