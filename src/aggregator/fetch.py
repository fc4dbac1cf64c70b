"""HTTP for feeds and article pages: limits, conditional GET, redirects, status mapping.

One ``httpx.AsyncClient`` is shared by every request of a ``Fetcher``. Limits:
a global and a per-host concurrency cap, connect/read timeouts, a total
deadline per request (a server dripping one byte a second still stops), and a
cap on the *decoded* body (a gzip bomb stops at the cap).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from collections.abc import Callable, Iterable, Set
from contextlib import AbstractAsyncContextManager, nullcontext
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urljoin, urlsplit

import brotli
import httpcore
import httpx

from .config import FetchSettings
from .errors import BodyTooLarge, ConfigError, FetchError, HTTPStatusError, NetworkError
from .models import FetchResult
from .netguard import ALLOWED_SCHEMES, GuardedBackend, NetGuard
from .urls import host_of, port_problem

log = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml, application/feed+json, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
ACCEPT_ENCODING = "gzip, deflate, br"
_STEP = 64 * 1024  # most decoded bytes produced per decompression step: a bomb never inflates at once
_PERMANENT = frozenset({301, 308})
_DRAIN_LIMIT = 64 * 1024  # most bytes of an unwanted body read to keep its connection
KEEPALIVE_S = 5.0  # an idle connection is kept this long for the next request to its host


class HostSlots(Protocol):
    """A per-host limit shared by several processes (``cluster.hostslots``)."""

    def slot(self, host: str) -> AbstractAsyncContextManager[None]: ...

    async def aclose(self) -> None: ...


class Fetcher:
    """Fetch URLs under the configured limits. Use as an async context manager."""

    def __init__(
        self, settings: FetchSettings, allow_hosts: Iterable[str] = (), transport: httpx.AsyncBaseTransport | None = None,
        named_hosts: Callable[[], Set[str]] | None = None, host_slots: HostSlots | None = None,
    ) -> None:
        """``named_hosts``: the hosts the config names (its feeds'), which may reach the addresses
        ``allow_hosts`` opens even when not listed there (``NetGuard``). ``host_slots``: a limit per
        host shared with other processes (a cluster's workers), on top of this one's."""
        self.settings = settings
        self._slots = host_slots
        guard = NetGuard.from_allow_list(allow_hosts, named_hosts)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=False,
            transport=transport or HostPools(guard, settings.per_host_concurrency, tls_context(settings)),
            trust_env=False,
        )
        self._all = asyncio.Semaphore(settings.max_concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object | TracebackType) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._slots is not None:
            await self._slots.aclose()

    def _slot(self, host: str) -> AbstractAsyncContextManager[object]:
        return self._slots.slot(host) if self._slots is not None else nullcontext()

    async def fetch_feed(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET a feed, conditionally when validators are known. A 304 comes back as a result, not an error."""
        headers = {"Accept": FEED_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._fetch(url, headers)

    async def fetch_page(self, url: str) -> FetchResult:
        """GET an article page under the same limits as feeds."""
        return await self._fetch(url, {"Accept": PAGE_ACCEPT})

    async def _fetch(self, url: str, headers: dict[str, str]) -> FetchResult:
        if urlsplit(url).scheme.lower() not in ALLOWED_SCHEMES:
            raise FetchError(url, f"only http and https URLs are fetched, not {url[:60]!r}")
        problem = port_problem(url)
        if problem:
            raise FetchError(url, problem)
        return await self._follow(url, headers)

    async def _follow(self, url: str, headers: dict[str, str]) -> FetchResult:
        # The total deadline covers the whole exchange, redirects included, but not the time
        # spent queueing for a free connection slot (that is our politeness, not their slowness).
        budget = self.settings.total_deadline
        current, permanent = url, True
        seen = {url}
        for _ in range(self.settings.max_redirects + 1):
            status, resp_headers, content, spent = await self._one(url, current, headers, budget)
            budget -= spent
            if status in _REDIRECTS:
                target, refusal = redirect_target(current, resp_headers.get("location"), seen)
                if refusal:
                    raise FetchError(url, f"HTTP {status}: {refusal}")
                seen.add(target)
                permanent = permanent and status in _PERMANENT
                current = target
                continue
            if status == 304 or 200 <= status < 300:
                return FetchResult(
                    url=url,
                    final_url=current,
                    status=status,
                    content=content,
                    headers=resp_headers,
                    etag=resp_headers.get("etag"),
                    last_modified=resp_headers.get("last-modified"),
                    permanent_url=current if permanent and current != url else None,
                )
            raise HTTPStatusError(url, status, retry_after=resp_headers.get("retry-after"))
        raise FetchError(url, f"more than {self.settings.max_redirects} redirects")

    async def _one(self, url: str, current: str, headers: dict[str, str], budget: float) -> tuple[int, dict[str, str], bytes, float]:
        """One request under the concurrency limits; returns (status, headers, body, seconds spent)."""
        host = host_of(current)
        host_limit = self._hosts.setdefault(host, asyncio.Semaphore(self.settings.per_host_concurrency))
        # The host's slot first: a request waiting for its host must not hold one of the global slots
        # (thirty feeds of one site in a row would otherwise take them all and run two at a time).
        async with host_limit, self._slot(host), self._all:
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                async with asyncio.timeout(max(budget, 0.0)):
                    status, resp_headers, content = await self._exchange(url, current, headers)
            except TimeoutError:
                raise NetworkError(url, f"no complete answer within {self.settings.total_deadline:g}s") from None
            return status, resp_headers, content, loop.time() - started

    async def _exchange(self, url: str, current: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        cap = self.settings.max_body_bytes
        try:
            async with self._client.stream("GET", current, headers={**headers, "Accept-Encoding": ACCEPT_ENCODING}) as response:
                resp_headers = {k.lower(): v for k, v in response.headers.items()}
                if response.status_code != 200:
                    await _drain(response)
                    return response.status_code, resp_headers, b""
                declared = resp_headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap and "content-encoding" not in resp_headers:
                    raise BodyTooLarge(url, f"body of {int(declared)} bytes exceeds the {cap}-byte cap")
                decoder = BoundedDecoder(url, resp_headers.get("content-encoding", ""), cap)
                chunks: list[bytes] = []
                async for raw in response.aiter_raw():
                    chunks.append(decoder.feed(raw))
                chunks.append(decoder.flush())
                return response.status_code, resp_headers, b"".join(chunks)
        except httpx.ConnectError as exc:
            message = str(exc)
            if message.startswith("blocked:"):
                raise FetchError(url, message) from None
            raise NetworkError(url, f"ConnectError: {message or 'connection failed'}") from None
        except httpx.TimeoutException as exc:
            raise NetworkError(url, f"timed out ({type(exc).__name__})") from None
        except httpx.DecodingError as exc:
            raise FetchError(url, f"undecodable response body: {exc}") from None
        except httpx.NetworkError as exc:
            raise NetworkError(url, f"{type(exc).__name__}: {exc or 'connection lost'}") from None
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise FetchError(url, f"{type(exc).__name__}: {exc or 'connection failed'}") from None


async def _drain(response: httpx.Response) -> None:
    """Read a small unwanted body (a 304's empty one, a short error page) to its end, so the
    connection goes back to the pool; a connection left mid-response is closed instead."""
    read = 0
    async for raw in response.aiter_raw():
        read += len(raw)
        if read > _DRAIN_LIMIT:
            return


class BoundedDecoder:
    """Content-Encoding decoding that stops at the cap while decoding, so memory stays small:
    output is produced at most 64 KiB at a time, however well the body compresses."""

    def __init__(self, url: str, encoding: str, cap: int) -> None:
        self.url, self.cap, self.size = url, cap, 0
        self.encoding = encoding.strip().lower()
        self._z: Any = None
        if self.encoding in ("", "identity"):
            pass
        elif self.encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            pass  # zlib-wrapped or raw: decided on the first bytes
        elif self.encoding == "br":
            self._br = brotli.Decompressor()
        else:
            raise FetchError(url, f"unsupported Content-Encoding {encoding[:40]!r}")

    def _count(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self.cap:
            raise BodyTooLarge(self.url, f"body exceeds the {self.cap}-byte cap")
        return data

    def feed(self, raw: bytes) -> bytes:
        try:
            if self.encoding in ("", "identity"):
                return self._count(raw)
            if self.encoding == "br":
                return self._brotli(raw)
            if self._z is None:  # deflate: RFC 1950 (zlib) as specified, raw RFC 1951 as often sent
                self._z = zlib.decompressobj(zlib.MAX_WBITS if raw[:1] and (raw[0] & 0x0F) == 8 else -zlib.MAX_WBITS)
            out = [self._count(self._z.decompress(raw, _STEP))]
            while self._z.unconsumed_tail:
                out.append(self._count(self._z.decompress(self._z.unconsumed_tail, _STEP)))
            return b"".join(out)
        except (zlib.error, brotli.error) as exc:
            raise FetchError(self.url, f"undecodable {self.encoding} body: {exc}") from None

    def _brotli(self, raw: bytes) -> bytes:
        out = [self._count(self._br.process(raw, output_buffer_limit=_STEP))]
        while not self._br.can_accept_more_data():
            out.append(self._count(self._br.process(b"", output_buffer_limit=_STEP)))
        return b"".join(out)

    def flush(self) -> bytes:
        return self._count(self._z.flush()) if self._z is not None else b""


def redirect_target(current: str, location: str | None, seen: set[str]) -> tuple[str, str | None]:
    """Where a redirect leads, or why it is refused: no Location, a non-http(s) scheme, a
    downgrade from https to plain http, or a loop."""
    if not location:
        return "", "redirect without a Location header"
    target = urljoin(current, location.strip())
    if urlsplit(target).scheme.lower() not in ALLOWED_SCHEMES:
        return target, f"redirect to a non-http URL {target[:80]!r}"
    problem = port_problem(target)
    if problem:
        return target, f"redirect to a URL with an {problem}: {target[:80]!r}"
    if urlsplit(current).scheme.lower() == "https" and urlsplit(target).scheme.lower() == "http":
        return target, f"refused redirect from https to plain http ({target[:80]})"
    if target in seen:
        return target, f"redirect loop at {target}"
    return target, None


def tls_context(settings: FetchSettings) -> ssl.SSLContext:
    """Certificates are always verified: against the system's authorities plus ``ca_bundle`` if set."""
    context = httpx.create_ssl_context(trust_env=False)
    if settings.ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(settings.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{settings.ca_bundle}: not a PEM certificate bundle ({exc})") from None
    return context


class HostPools(httpx.AsyncBaseTransport):
    """One small keep-alive pool per origin (scheme, host, port), connecting through the address guard.

    httpcore's single pool scans all its connections, in a nested loop, on every request: with a
    connection kept per host for a few hundred hosts, that scan cost more than the requests (and a
    pool capped at the concurrency limit instead evicts the connection the next feed of a host
    needs). Pools idle for longer than the keep-alive are closed on a later request.
    """

    def __init__(self, guard: NetGuard, per_host: int, context: ssl.SSLContext, keepalive_s: float = KEEPALIVE_S) -> None:
        self._guard, self._context, self._keepalive_s = guard, context, keepalive_s
        self._limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host, keepalive_expiry=keepalive_s)
        self._pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}
        self._last_used: dict[tuple[bytes, bytes, int | None], float] = {}
        self._next_sweep = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = asyncio.get_running_loop().time()
        if now >= self._next_sweep:
            self._next_sweep = now + self._keepalive_s
            await self._close_idle(now)
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = guarded_transport(self._guard, self._limits, self._context)
        self._last_used[key] = now
        return await pool.handle_async_request(request)

    async def _close_idle(self, now: float) -> None:
        for key, transport in list(self._pools.items()):
            connections = transport._pool.connections
            if now - self._last_used[key] > self._keepalive_s and all(c.is_idle() or c.is_closed() for c in connections):
                del self._pools[key], self._last_used[key]
                await transport.aclose()

    async def aclose(self) -> None:
        pools, self._pools, self._last_used = list(self._pools.values()), {}, {}
        for transport in pools:
            await transport.aclose()

    def __len__(self) -> int:
        """Origins with a pool open."""
        return len(self._pools)


def guarded_transport(guard: NetGuard, limits: httpx.Limits, context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, with its connection pool connecting through the address guard."""
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=False)  # no second context loaded
    # httpx does not expose httpcore's network_backend; swap the pool for one that has ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(guard),
    )
    return transport
