"""URL normalisation for article identity (the same page under two spellings is one article), and the
forms of host an allow list may name."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only say where a click came from.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid",
        "_ga", "_gl", "ref", "ref_src", "cmpid", "ocid", "smid", "taid", "at_medium",
        "at_campaign", "ns_mchannel", "ns_campaign", "ito", "spm",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "ns_", "hsa_")


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def normalize_url(url: str) -> str:
    """Lower-case scheme and host, drop default ports, fragments and tracking parameters.

    The path keeps its case (servers may treat it as significant); the
    remaining query parameters keep their order.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and host.endswith(default_port):
        host = host[: -len(default_port)]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query.strip(), keep_blank_values=True) if not _is_tracking(k)])
    path = parts.path.strip() or "/"
    return urlunsplit((scheme, host, path, query, ""))


def host_of(url: str) -> str:
    """The host[:port] part that per-host limits are keyed on."""
    try:
        parts = urlsplit(url)
        return (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return ""


def port_problem(url: str) -> str | None:
    """Why the URL's port cannot be connected to (not a number, or out of 0-65535), else None."""
    try:
        _ = urlsplit(url).port  # parsed (and range-checked) only when read
    except ValueError:
        return "invalid port (0-65535)"
    return None


_HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*")


def parse_allow_list(entries: Iterable[str]) -> tuple[frozenset[str], tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]]:
    """``settings.allow_hosts`` as (host names, networks); ValueError names an entry that is neither
    a host name, an address nor a network. (Here, not in ``netguard``: the config checks the list
    without loading the HTTP stack.)"""
    names: set[str] = set()
    networks = []
    for entry in entries:
        entry = entry.strip().lower().strip("[]")
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if not _HOSTNAME.fullmatch(entry):
                raise ValueError(
                    f"{entry!r} is not a host name, an address or a network (no scheme, port, wildcard or trailing dot)"
                ) from None
            names.add(entry)
    return frozenset(names), tuple(networks)
