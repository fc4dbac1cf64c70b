"""Compression bombs (gzip, deflate, brotli) stop at the body cap while decoding, with memory staying small."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib

import brotli
import pytest

from aggregator.config import FetchSettings
from aggregator.errors import BodyTooLarge
from aggregator.fetch import Fetcher
from aggregator.tools.feedserver import Response

CAP = 2_000_000
BOMB = b"\0" * (100 * 1024 * 1024)  # 100 MiB of zeros: ~100 KB gzipped, a few hundred bytes as brotli
FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>Small</title></channel></rss>" * 50


def raw_deflate(data: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


ENCODINGS = {
    "gzip": ("gzip", gzip.compress),
    "deflate": ("deflate", zlib.compress),
    "raw-deflate": ("deflate", raw_deflate),  # what many servers send as "deflate"
    "br": ("br", lambda d: brotli.compress(d, quality=5)),
}


def fetch(url: str) -> bytes:
    async def go() -> bytes:
        async with Fetcher(FetchSettings(max_body_bytes=CAP), ["127.0.0.1"]) as fetcher:
            return (await fetcher.fetch_feed(url)).content

    return asyncio.run(go())


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_bomb_stops_at_the_cap_with_small_memory(server, routes, name):
    header, compress = ENCODINGS[name]
    routes["/bomb.xml"] = Response(200, compress(BOMB), {"Content-Type": "application/rss+xml", "Content-Encoding": header})
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge, match="cap"):
            fetch(server.url("/bomb.xml"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < CAP + 16 * 1024 * 1024, f"decoding a {len(BOMB) >> 20} MiB bomb peaked at {peak >> 20} MiB"


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_compressed_feeds_still_decode(server, routes, name):
    header, compress = ENCODINGS[name]
    routes["/feed.xml"] = Response(200, compress(FEED), {"Content-Type": "application/rss+xml", "Content-Encoding": header})
    assert fetch(server.url("/feed.xml")) == FEED
