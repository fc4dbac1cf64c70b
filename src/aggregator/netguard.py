"""Which addresses and schemes may be contacted (SSRF protection).

By default a feed may not make us connect to loopback, private, link-local
(e.g. the cloud metadata address 169.254.169.254), multicast, reserved or
otherwise non-global addresses, nor use a scheme other than http(s). The check
happens at connect time, on the address we actually connect to, for every hop
(redirects included) and every DNS answer: the name is resolved once, each
answer checked, and the connection pinned to the checked address, so a DNS
answer that changes between check and connect cannot slip through.

``settings.allow_hosts`` opens specific hosts: names (``feeds.internal``),
addresses (``127.0.0.1``) or networks (``10.1.0.0/16``). An address or network
opens its addresses to URLs that name them, not to every name that resolves
there: a connection to an address only the allow list opens is made for a URL
whose host is that address written out, a name the allow list lists, or the
host of a feed the config lists (``named``); a redirect to some other name
resolving there (``http://evil.example/`` -> 127.0.0.1) is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore

from .urls import parse_allow_list

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWED_SCHEMES = frozenset({"http", "https"})


class BlockedAddress(httpcore.ConnectError):
    """Raised inside the HTTP stack when a connection would reach a forbidden address."""


def why_blocked(ip: IPAddress) -> str | None:
    """Why this address may not be contacted by default ("a loopback address"), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return why_blocked(ip.ipv4_mapped)
    for attr, label in (
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_unspecified", "an unspecified"),
        ("is_reserved", "a reserved"),
        ("is_private", "a private"),
    ):
        if getattr(ip, attr):
            return f"{label} address"
    if not ip.is_global:
        return "a non-public address"
    return None


def _no_names() -> Set[str]:
    return frozenset()


@dataclass(frozen=True)
class NetGuard:
    """The policy: what is allowed beyond public addresses."""

    allow_names: frozenset[str] = frozenset()
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # The hosts the config names (its feeds'), read at each check: a hot reload changes them.
    named: Callable[[], Set[str]] = _no_names

    @classmethod
    def from_allow_list(cls, entries: Iterable[str], named: Callable[[], Set[str]] | None = None) -> NetGuard:
        """From ``settings.allow_hosts``; ValueError names an entry that is none of the three forms.
        ``named``: the hosts the config names besides (lower-case, ASCII), e.g. ``feed_hosts``."""
        names, networks = parse_allow_list(entries)
        return cls(names, networks, named or _no_names)

    def check(self, host: str, ip: IPAddress) -> None:
        """Raise BlockedAddress unless ``ip`` (an answer for ``host``) may be contacted."""
        name = host.lower().strip("[]")
        if name in self.allow_names:
            return
        reason = why_blocked(ip)
        if not reason:
            return
        literal = _address(name) == ip
        if any(ip in net for net in self.allow_networks):
            # Opened for URLs naming it (or naming a host the config names), not for whatever name
            # resolves there: a redirect to a name of the attacker's, pointed at 127.0.0.1, stays out.
            if literal or name in self.named():
                return
            raise BlockedAddress(
                f"blocked: {host} resolves to {ip}, {reason} that settings.allow_hosts opens only to URLs naming it "
                f"or a host the config names (list {name} in settings.allow_hosts to allow it)"
            )
        where = f"{ip} is" if literal else f"{host} resolves to {ip},"
        raise BlockedAddress(f"blocked: {where} {reason} (allow it with settings.allow_hosts)")


def _address(name: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def feed_hosts(urls: Iterable[str]) -> frozenset[str]:
    """The hosts of these URLs as the guard compares them (lower case; IDN names in their ASCII form)."""
    hosts = set()
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host:
            try:
                hosts.add(host.encode("idna").decode("ascii"))
            except UnicodeError:
                hosts.add(host)
    return frozenset(hosts)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves, checks and pins every connection."""

    def __init__(self, guard: NetGuard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        for ip in addresses:
            self.guard.check(host, ip)  # every answer must pass, not just the first
        # Then each in turn, as a plain client does: a name answering ::1 first and 127.0.0.1 second
        # (dual-stack hosts, /etc/hosts on many systems) may only listen on the second.
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # _resolve returns at least one address
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("blocked: unix sockets are never contacted")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)

    @staticmethod
    async def _resolve(host: str, port: int, timeout: float | None) -> list[IPAddress]:
        bare = host.strip("[]")
        try:
            return [ipaddress.ip_address(bare)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        seen: dict[IPAddress, None] = {}
        for *_, sockaddr in infos:
            seen.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), None)
        if not seen:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        return list(seen)
