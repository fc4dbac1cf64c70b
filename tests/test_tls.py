"""HTTPS on 127.0.0.1 with a test certificate authority: certificates are verified, a private CA can be
trusted through settings.fetch.ca_bundle, and an https feed never follows a redirect down to plain http."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
import trustme

from aggregator.config import load_config
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.factory import make_aggregator
from aggregator.tools.feedserver import LoopbackServer, Response
from conftest import Routes
from helpers import write_config

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
RSS = "application/rss+xml; charset=utf-8"


def feed(title: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Secure</title>'
        f"<item><title>{title}</title><link>https://secure.example/{len(title)}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=1), usegmt=True)}</pubDate>"
        "<description>The harbour authority said the terminal opens in March.</description></item></channel></rss>"
    ).encode()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[tuple[LoopbackServer, Routes]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    routes = Routes()
    with LoopbackServer(routes, tls=context) as srv:
        yield srv, routes


def poll(tmp_path: Path, url: str, **fetch: object) -> tuple[Aggregator, str | None]:
    config = load_config(write_config(tmp_path, [{"url": url, "name": "Secure"}], fetch=fetch, extract={"fetch_pages": False}))
    agg = make_aggregator(config, clock=lambda: NOW)
    (report,) = asyncio.run(agg.poll_round(NOW))
    return agg, report.error


def test_https_feed_from_a_private_ca_is_read(tmp_path, ca, tls_server) -> None:
    server, routes = tls_server
    routes["/feed.xml"] = Response(200, feed("Terminal opens in March"), {"Content-Type": RSS})
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    agg, error = poll(tmp_path, server.url("/feed.xml"), ca_bundle="ca.pem")  # relative to the config file
    try:
        assert server.url("/feed.xml").startswith("https://")
        assert error is None
        assert agg.store.counts()["articles"] == 1
    finally:
        agg.close()


def test_unknown_certificate_authority_is_a_clear_feed_error(tmp_path, tls_server) -> None:
    server, routes = tls_server
    routes["/feed.xml"] = Response(200, feed("Never read"), {"Content-Type": RSS})
    agg, error = poll(tmp_path, server.url("/feed.xml"))
    try:
        assert error is not None and "CERTIFICATE_VERIFY_FAILED" in error
        assert server.requests == []  # the handshake failed: no request was ever sent
        assert agg.store.counts()["articles"] == 0
    finally:
        agg.close()


def test_https_to_plain_http_redirect_is_refused_with_zero_requests_there(tmp_path, ca, tls_server, server, routes) -> None:
    secure, secure_routes = tls_server
    routes["/feed.xml"] = Response(200, feed("Downgraded copy"), {"Content-Type": RSS})
    secure_routes["/feed.xml"] = Response(301, b"", {"Location": server.url("/feed.xml")})
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    agg, error = poll(tmp_path, secure.url("/feed.xml"), ca_bundle=str(tmp_path / "ca.pem"))
    try:
        assert error is not None and "refused redirect from https to plain http" in error
        assert secure.paths() == ["/feed.xml"] and server.requests == []
        (state,) = agg.store.feeds()
        assert state.url == secure.url("/feed.xml")  # a refused 301 does not move the feed
        assert agg.store.counts()["articles"] == 0
    finally:
        agg.close()


def test_https_to_https_redirect_is_followed_and_moves_the_feed(tmp_path, ca, tls_server) -> None:
    server, routes = tls_server
    routes["/old.xml"] = Response(301, b"", {"Location": "/new.xml"})
    routes["/new.xml"] = Response(200, feed("Moved but secure"), {"Content-Type": RSS})
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    agg, error = poll(tmp_path, server.url("/old.xml"), ca_bundle="ca.pem")
    try:
        assert error is None
        (state,) = agg.store.feeds()
        assert state.url == server.url("/new.xml")
    finally:
        agg.close()


@pytest.mark.parametrize(("content", "message"), [(None, "is not a file"), ("not a certificate\n", "is not a PEM certificate bundle")])
def test_bad_ca_bundle_is_a_config_error(tmp_path, content, message) -> None:
    if content is not None:
        (tmp_path / "ca.pem").write_text(content)
    path = write_config(tmp_path, [], fetch={"ca_bundle": "ca.pem"})
    with pytest.raises(ConfigError, match=f"feeds.yaml: settings.fetch.ca_bundle: .*ca.pem {message}"):
        load_config(path)
