"""The web app: HTML pages and a JSON API over one config's stored stories (Starlette; Jinja2 with
autoescaping; no JavaScript, and a Content-Security-Policy that forbids it).

Pages: ``/`` (what is unread or updated, today and the two days before), ``/day/YYYY-MM-DD``,
``/days``, ``/stories/{id}``, ``/feeds``, ``/search?q=``, ``/login``. The API under ``/api/``
answers with the CLI's ``--json`` shapes (``aggregator.shapes``); ``/healthz`` says whether the
database can be read; ``/feeds/stories.atom`` and ``.json`` are feeds of the stories.

Reading goes through one shared reading ``Library`` (SQLite readers beside the daemon's writer),
opened on first need and again after it could not be. Writing (marking stories read) is refused
to other sites (``Sec-Fetch-Site``/``Origin``), and needs the token when there is one; bound to a
loopback address, the app answers only requests that name a loopback host, so that a web page
cannot reach it through a DNS name rebound to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Config
from ..digest import safe_url
from ..errors import StorageError, UsageError
from ..library import Clock, Library, utcnow
from ..listing import kind_label, last_update, outlets_line
from ..models import Revision, SearchHit, Story
from ..store import sqlite_file

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
RECENT_DAYS = 2  # the front page: today and the two days before
DAYS_LISTED = 14  # /days
VISIT_GAP = timedelta(minutes=30)  # a visit ends after this long without a look at the front page
MAX_FORM_BYTES = 64 * 1024
MAX_QUERY_CHARS = 500
MAX_ID = 2**63 - 1
SEARCH_LIMIT = 50
AUTH_COOKIE, VISIT_COOKIE = "aggregator_auth", "aggregator_visit"
STATUSES = ("unread", "updated", "read")
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) names this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def marked(hit: SearchHit) -> Markup:
    """A search hit's snippet, escaped, with its matched words in ``<mark>`` (offsets out of
    range or overlapping are clipped, never trusted)."""
    text, parts, at = hit.snippet, [], 0
    for start, end in sorted(hit.marks):
        start, end = max(start, at), min(end, len(text))
        if start < end:
            parts += [escape(text[at:start]), Markup("<mark>"), escape(text[start:end]), Markup("</mark>")]
            at = end
    parts.append(escape(text[at:]))
    return Markup("").join(parts)


def _without_bidi_controls(value: object) -> object:
    """Explicit embeddings and overrides in feed text could reverse the text around them (a title
    that reads differently from its link); right-to-left text itself is laid out by ``dir=auto``."""
    if isinstance(value, Markup):
        return Markup(str.translate(value, _BIDI_CONTROLS))
    if isinstance(value, str):
        return value.translate(_BIDI_CONTROLS)
    return value


def local_next(value: str | None, default: str) -> str:
    """Where a form sends the browser back to: a path on this site, nothing else."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and value.isprintable():
        return value
    return default


def host_name(header: str) -> str:
    """The name in a Host header, without the port (``[::1]:8080`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


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


class Web:
    """The app's state: the config, the shared reading ``Library``, the templates and the token."""

    def __init__(self, config: Config, token: str | None, clock: Clock, loopback: bool) -> None:
        self.config = config
        self.token = token
        self.clock = clock
        self.loopback = loopback
        self.session = hmac.new(token.encode(), b"aggregator web session", hashlib.sha256).hexdigest() if token else None
        self._library: Library | None = None
        self._lock = threading.Lock()
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                               finalize=_without_bidi_controls, trim_blocks=True, lstrip_blocks=True)
        tz = config.tz
        self.env.filters["local"] = lambda dt: dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        self.env.filters["safe_url"] = safe_url
        self.env.filters["marked"] = marked
        self.env.filters["paragraphs"] = lambda text: [p.strip() for p in text.splitlines() if p.strip()]
        # the listings' words for a story ("5 outlets (2 copies of Global Wire)", "copy of Global Wire", "last update 14:20")
        self.env.filters["outlets"] = outlets_line
        self.env.filters["last_update"] = lambda story: last_update(story, tz)
        self.env.globals["kind_label"] = kind_label

    # -- the database ----------------------------------------------------------------

    def library(self) -> Library:
        """The shared reading Library; ``StorageError`` (an answer of 503) when it cannot be opened."""
        with self._lock:
            if self._library is None:
                from ..factory import open_library

                self._library = open_library(self.config, self.clock)
            return self._library

    def close(self) -> None:
        with self._lock:
            if self._library is not None:
                self._library.close()
                self._library = None

    # -- requests ------------------------------------------------------------------------

    def signed_in(self, request: Request) -> bool:
        """Whether this request may write: always without a token; with one, the bearer token or the sign-in cookie."""
        if self.token is None or self.session is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return True
        return hmac.compare_digest(request.cookies.get(AUTH_COOKIE, "").encode(), self.session.encode())

    def check_write(self, request: Request) -> None:
        """Refuse a write sent by another site, or without the token when there is one."""
        refuse_cross_site(request)
        if not self.signed_in(request):
            if is_api(request):
                raise HTTPException(401, "this server needs its token: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})
            raise HTTPException(403, "this server needs its token to change anything: sign in first")

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.env.get_template(template).render(
            here=here, tz=self.config.settings.timezone, token_needed=self.token is not None, can_write=self.signed_in(request), **context)
        return HTMLResponse(html, status, headers={"Cache-Control": "no-cache"})


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
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def as_json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status, headers={"Cache-Control": "no-cache"})


def story_id(request: Request) -> int:
    value: int = request.path_params["id"]
    if not 1 <= value <= MAX_ID:
        raise HTTPException(404, f"no story with id {value}")
    return value


def parse_day(value: str) -> date:
    import typer

    from ..cli.app import parse_day as parse

    try:
        return parse(value)
    except typer.BadParameter as exc:
        raise HTTPException(400, f"date: {exc}") from None


def parse_since(value: str, now: datetime, config: Config) -> datetime:
    import typer

    from ..cli.app import parse_since as parse

    try:
        return parse(value, now, config.tz)
    except typer.BadParameter as exc:
        raise HTTPException(400, f"since: {exc}") from None


def parse_statuses(value: str | None) -> set[str]:
    wanted = {s.strip() for s in (value or ",".join(STATUSES)).split(",") if s.strip()}
    if not wanted or wanted - set(STATUSES):
        raise HTTPException(400, f"status: expected a comma-separated list of {', '.join(STATUSES)}, got {value!r}")
    return wanted


def search_query(request: Request) -> str:
    query = request.query_params.get("q", "").strip()
    if len(query) > MAX_QUERY_CHARS:
        raise HTTPException(400, f"q: a search is at most {MAX_QUERY_CHARS} characters")
    return query


async def body_of(request: Request) -> bytes:
    """The request's body, at most 64 KiB."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"a request body is at most {MAX_FORM_BYTES // 1024} KiB")
    return body


async def form_fields(request: Request) -> dict[str, list[str]]:
    """An HTML form's fields (application/x-www-form-urlencoded)."""
    return parse_qs((await body_of(request)).decode("utf-8", "replace"), keep_blank_values=True)


def visit(cookie: str | None, now: datetime) -> tuple[datetime | None, str]:
    """(the end of the reader's previous visit, or None on a first one; the cookie's new value).
    The cookie holds "since:last": a look at the front page more than ``VISIT_GAP`` after the
    last one starts a new visit, whose news are what came after that last look."""
    since: datetime | None = None
    last: datetime | None = None
    try:
        since_s, last_s = (cookie or "").split(":")
        since = datetime.fromtimestamp(int(since_s), timezone.utc) if since_s else None
        last = datetime.fromtimestamp(int(last_s), timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    if last is not None and now - last > VISIT_GAP:
        since = last
    return since, f"{int(since.timestamp()) if since else ''}:{int(now.timestamp())}"


def make_app(config: Config, token: str | None = None, clock: Clock = utcnow, host: str = "127.0.0.1") -> Starlette:
    """The web app over ``config``'s database. ``token``: writes need it (``Authorization: Bearer``,
    or the cookie ``/login`` sets). ``host``: the address it is served on; a loopback one makes
    the app answer only requests naming a loopback host."""
    web = Web(config, token, clock, is_loopback(host))

    # -- pages -------------------------------------------------------------------------

    def stories_page(request: Request, stories: list[Story], **context: Any) -> HTMLResponse:
        return web.page(request, "stories.html", stories=stories, **context)

    def front(request: Request) -> Response:
        lib = web.library()
        now, today = web.clock(), lib.today()
        start = lib.day_bounds(today - timedelta(days=RECENT_DAYS))[0]
        stories = [s for s in lib.stories_between(start, now + timedelta(days=1)) if s.status != "read"]
        since, cookie = visit(request.cookies.get(VISIT_COOKIE), now)
        fresh = {s.id for s in stories if since and any(v.first_seen_at > since for v in s.variants)}
        today_count = len(lib.store.story_ids_between(*lib.day_bounds(today)))
        response = stories_page(request, stories, title="What's new", front=True, day=today, since=since, fresh=fresh,
                                today_count=today_count, first_day=today - timedelta(days=RECENT_DAYS))
        response.set_cookie(VISIT_COOKIE, cookie, max_age=400 * 86400, httponly=True, samesite="lax")
        return response

    def day_page(request: Request) -> Response:
        day = parse_day(request.path_params["day"])
        lib = web.library()
        today = lib.today()
        return stories_page(request, lib.stories_on(day), title=f"Stories of {day.isoformat()}", day=day, today=today,
                            prev_day=day - timedelta(days=1) if day > date(1970, 1, 1) else None,
                            next_day=day + timedelta(days=1) if day < today else None, fresh=set())

    def days_page(request: Request) -> Response:
        if chosen := request.query_params.get("date"):  # the date picker's GET form
            return RedirectResponse(f"/day/{parse_day(chosen).isoformat()}", 303)
        lib = web.library()
        today = lib.today()
        days = [today - timedelta(days=n) for n in range(DAYS_LISTED)]
        counts = [(d, len(lib.store.story_ids_between(*lib.day_bounds(d)))) for d in days]
        return web.page(request, "days.html", title="Days", counts=counts, today=today, earlier=days[-1] - timedelta(days=1))

    def story_page(request: Request) -> Response:
        lib = web.library()
        found = lib.story(story_id(request))
        if found is None:
            raise HTTPException(404, f"no story with id {request.path_params['id']}")
        from ..facts import story_facts

        earlier: dict[int, list[Revision]] = {}  # article -> its earlier versions, oldest first
        for r in lib.revisions(found):
            earlier.setdefault(r.article_id, []).append(r)
        return web.page(request, "story.html", title=found.title, story=found, day=found.first_reported_at.astimezone(config.tz).date(),
                        facts=story_facts(found), timeline=lib.timeline(found), earlier=earlier,
                        new={v.article_id for v in found.new_variants} if found.read_at else set())

    def feeds_page(request: Request) -> Response:
        from ..decide import health

        feeds = web.library().feeds()
        return web.page(request, "feeds.html", title="Feeds", feeds=[(f, health(f), safe_url(f.url)) for f in feeds])

    def search_page(request: Request) -> Response:
        query = search_query(request)
        results = web.library().search(query, SEARCH_LIMIT) if query else []
        return web.page(request, "search.html", title=f"Search: {query}" if query else "Search", q=query, results=results,
                        limit=SEARCH_LIMIT)

    async def mark(request: Request) -> Response:
        """POST /stories/{id}/read|unread, and /stories/read|unread (every ``id`` field): back to ``next``."""
        web.check_write(request)
        fields = await form_fields(request)
        read = request.url.path.endswith("/read")
        if "id" in request.path_params:
            ids, back = [story_id(request)], f"/stories/{request.path_params['id']}"
        else:
            ids, back = form_ids(fields.get("id", [])), "/"
        lib = web.library()
        found = await run_in_threadpool(lib.mark_read if read else lib.mark_unread, ids)
        if "id" in request.path_params and not found:
            raise HTTPException(404, f"no story with id {ids[0]}")
        return RedirectResponse(local_next((fields.get("next") or [""])[0], back), 303)

    def login_page(request: Request) -> Response:
        return web.page(request, "login.html", title="Sign in", next=local_next(request.query_params.get("next"), "/"))

    async def login(request: Request) -> Response:
        refuse_cross_site(request)
        fields = await form_fields(request)
        given = (fields.get("token") or [""])[0]
        back = local_next((fields.get("next") or [""])[0], "/")
        if web.token is None or web.session is None:
            return RedirectResponse(back, 303)
        if not hmac.compare_digest(given.encode(), web.token.encode()):
            return web.page(request, "login.html", 403, title="Sign in", next=back, wrong=True)
        response = RedirectResponse(back, 303)
        response.set_cookie(AUTH_COOKIE, web.session, max_age=30 * 86400, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        refuse_cross_site(request)
        response = RedirectResponse("/", 303)
        response.delete_cookie(AUTH_COOKIE, httponly=True, samesite="strict")
        return response

    # -- story feeds -------------------------------------------------------------------

    def story_feed(kind: str) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            from .. import storyfeeds  # (another module's: loaded only when a feed is asked for)

            lib = web.library()
            stories = lib.feed_stories()
            updated = max((s.updated_at for s in stories), default=web.clock())
            render = storyfeeds.atom_feed if kind == "atom" else storyfeeds.json_feed
            body = render(stories, base_url=str(request.base_url), title="aggregator: stories", updated=updated,
                          tz_name=config.settings.timezone)
            media = "application/atom+xml; charset=utf-8" if kind == "atom" else "application/feed+json"
            return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

        return endpoint

    # -- the API -------------------------------------------------------------------------

    def api_stories(request: Request) -> Response:
        from ..shapes import story_dict

        params = request.query_params
        day_s, since_s = params.get("date"), params.get("since")
        if day_s and since_s:
            raise HTTPException(400, "give date or since, not both")
        now = web.clock()
        start = parse_since(since_s, now, config) if since_s else None
        day = parse_day(day_s) if day_s else None
        wanted = parse_statuses(params.get("status"))
        lib = web.library()
        stories = lib.stories_between(start, now + timedelta(days=1)) if start else lib.stories_on(day or lib.today())
        return as_json([story_dict(s) for s in stories if s.status in wanted])

    def api_story(request: Request) -> Response:
        from ..shapes import story_dict

        lib = web.library()
        found = lib.story(story_id(request))
        if found is None:
            raise HTTPException(404, f"no story with id {request.path_params['id']}")
        return as_json(story_dict(found, with_text=True, timeline=lib.timeline(found), revisions=lib.revisions(found)))

    async def api_mark(request: Request) -> Response:
        """POST /api/stories/{id}/read|unread: the story as it is now. POST /api/stories/read|unread
        with {"ids": [...]}: {"marked": how many of them exist}."""
        from ..shapes import story_dict

        web.check_write(request)
        read = request.url.path.endswith("/read")
        lib = web.library()
        if "id" not in request.path_params:
            ids = await json_ids(request)
            found = await run_in_threadpool(lib.mark_read if read else lib.mark_unread, ids)
            return as_json({"marked": found})
        the_id = story_id(request)
        if not await run_in_threadpool(lib.mark_read if read else lib.mark_unread, [the_id]):
            raise HTTPException(404, f"no story with id {the_id}")
        story = await run_in_threadpool(lib.story, the_id)
        assert story is not None
        return as_json(story_dict(story))

    def api_feeds(request: Request) -> Response:
        from ..shapes import feed_dict

        lib = web.library()
        return as_json([feed_dict(f, lib.config.settings.schedule) for f in lib.feeds()])

    def api_search(request: Request) -> Response:
        from ..shapes import search_dict

        query = search_query(request)
        if not query:
            raise HTTPException(400, "q: give the words to search for")
        limit_s = request.query_params.get("limit", str(SEARCH_LIMIT))
        if not limit_s.isdigit() or not 1 <= int(limit_s) <= 500:
            raise HTTPException(400, f"limit: expected a number from 1 to 500, got {limit_s!r}")
        return as_json([search_dict(r) for r in web.library().search(query, int(limit_s))])

    def healthz(request: Request) -> Response:
        found = sqlite_file(config.database_url)
        if found is not None and not found.exists():  # (a reader opening a missing file would make an empty one)
            raise StorageError(f"{found}: no database here yet")
        lib = web.library()
        last = lib.last_poll_at()
        today = len(lib.store.story_ids_between(*lib.day_bounds(lib.today())))
        return as_json({"status": "ok", "last_poll_at": last.isoformat() if last else None, "stories_today": today})

    # -- errors ------------------------------------------------------------------------

    def error(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        if is_api(request):
            body = {"status": "unavailable", "reason": message} if status == 503 else {"error": message}
            response: Response = JSONResponse(body, status, headers=headers)
        else:
            response = web.page(request, "error.html", status, title=f"{status}", code=status, message=message)
            response.headers.update(headers or {})
        return response

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))

    def unusable(request: Request, exc: Exception) -> Response:
        return error(request, 400, str(exc))

    def unreadable(request: Request, exc: Exception) -> Response:
        log.warning("the database cannot be read: %s", exc)
        detail = str(exc) if web.loopback else "see the server's log"  # (a public page does not show the server's paths)
        return error(request, 503, f"the database cannot be read: {detail}", {"Retry-After": "30"})

    def failure(request: Request, exc: Exception) -> Response:  # (Starlette raises it on after this answer: uvicorn logs it)
        response = error(request, 500, "something went wrong here (the server's log says what)")
        response.headers.update(SECURITY_HEADERS)  # (this answer does not pass through Guard)
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        web.close()

    reads, writes = ["GET"], ["POST"]
    routes = [
        Route("/", front, methods=reads),
        Route("/day/{day}", day_page, methods=reads),
        Route("/days", days_page, methods=reads),
        Route("/stories/{id:int}", story_page, methods=reads),
        Route("/stories/{id:int}/read", mark, methods=writes),
        Route("/stories/{id:int}/unread", mark, methods=writes),
        Route("/stories/read", mark, methods=writes),
        Route("/stories/unread", mark, methods=writes),
        Route("/feeds", feeds_page, methods=reads),
        Route("/feeds/stories.atom", story_feed("atom"), methods=reads),
        Route("/feeds/stories.json", story_feed("json"), methods=reads),
        Route("/search", search_page, methods=reads),
        Route("/login", login_page, methods=reads),
        Route("/login", login, methods=writes),
        Route("/logout", logout, methods=writes),
        Route("/healthz", healthz, methods=reads),
        Route("/api/stories", api_stories, methods=reads),
        Route("/api/stories/{id:int}", api_story, methods=reads),
        Route("/api/stories/{id:int}/read", api_mark, methods=writes),
        Route("/api/stories/{id:int}/unread", api_mark, methods=writes),
        Route("/api/stories/read", api_mark, methods=writes),
        Route("/api/stories/unread", api_mark, methods=writes),
        Route("/api/feeds", api_feeds, methods=reads),
        Route("/api/search", api_search, methods=reads),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Response | Awaitable[Response]]] = {
        HTTPException: http_error, UsageError: unusable, StorageError: unreadable, Exception: failure,
    }
    return Starlette(routes=routes, middleware=[Middleware(Guard, loopback=web.loopback)], exception_handlers=handlers,
                     lifespan=lifespan)


def form_ids(values: Sequence[str]) -> list[int]:
    ids = [int(v) for v in values if v.isdigit() and 1 <= int(v) <= MAX_ID]
    if len(ids) != len(values) or not ids:
        raise HTTPException(400, "id: expected one or more story ids")
    return ids


async def json_ids(request: Request) -> list[int]:
    import json

    try:
        ids = json.loads(await body_of(request))["ids"]
    except (ValueError, TypeError, KeyError):
        ids = None
    if not isinstance(ids, list) or not ids or not all(type(i) is int and 1 <= i <= MAX_ID for i in ids):
        raise HTTPException(400, 'expected a JSON body {"ids": [story ids]}')
    return ids
