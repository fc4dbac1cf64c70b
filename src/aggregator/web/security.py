"""What keeps other sites and other people out: the security headers on every answer; bound to a
loopback address, only requests naming a loopback host (so that a web page cannot reach the app
through a DNS name rebound to 127.0.0.1); writes refused to other sites' pages and, when there is
a token, to requests without it; and forms sent back to this site only."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
AUTH_COOKIE = "aggregator_auth"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) names this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without the port (``[::1]:8080`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def local_next(value: str | None, default: str) -> str:
    """Where a form sends the browser back to: a path on this site, nothing else."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and value.isprintable():
        return value
    return default


class Guard:
    """Every response gets the security headers; bound to loopback, a request naming another host
    (a DNS name rebound to 127.0.0.1 by a web page) is refused before it reaches a route."""

    def __init__(self, app: ASGIApp, loopback: bool) -> None:
        self.app = app
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if self.loopback and not is_loopback(host_name(host)):
            response = Response(f"this server answers only to loopback names (127.0.0.1, localhost), not {host!r}\n",
                                421, media_type="text/plain")
            await response(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)


def session_cookie(token: str | None) -> str | None:
    """The sign-in cookie's value for ``token`` (derived from it: the cookie never holds the token
    itself); None without a token."""
    return hmac.new(token.encode(), b"aggregator web session", hashlib.sha256).hexdigest() if token else None


def signed_in(request: Request, token: str | None, session: str | None) -> bool:
    """Whether this request may write: always without a token; with one, the bearer token or the sign-in cookie."""
    if token is None or session is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    return hmac.compare_digest(request.cookies.get(AUTH_COOKIE, "").encode(), session.encode())


def check_write(request: Request, token: str | None, session: str | None) -> None:
    """Refuse a write sent by another site, or without the token when there is one."""
    refuse_cross_site(request)
    if not signed_in(request, token, session):
        if is_api(request):
            raise HTTPException(401, "this server needs its token: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})
        raise HTTPException(403, "this server needs its token to change anything: sign in first")


def refuse_cross_site(request: Request) -> None:
    """403 for a POST another site's page sent: browsers say so in ``Sec-Fetch-Site``; older ones
    in ``Origin`` (which is "null" on our own forms, under ``Referrer-Policy: no-referrer``)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, f"a request from another site ({site}) cannot change anything here")
    if site is None and origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, f"a request from another site ({origin}) cannot change anything here")


def is_api(request: Request) -> bool:
    """Whether the request is the API's (its errors are JSON, a missing token is a 401)."""
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"
