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

Modules: ``security`` (headers, the loopback guard, cross-site refusal, the token), ``params``
(what a request gives, checked), ``state`` (``Web``: the Library, the templates), ``pages`` and
``api`` (their handlers); this one maps the paths to the handlers and answers errors.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import Config
from ..errors import StorageError, UsageError
from ..library import Clock, utcnow
from .api import Api
from .pages import Pages, visit
from .security import CSP, SECURITY_HEADERS, Guard, is_api, is_loopback, local_next
from .state import HERE, Web, marked

__all__ = ["CSP", "is_loopback", "local_next", "make_app", "marked", "visit"]

log = logging.getLogger(__name__)


def make_app(config: Config, token: str | None = None, clock: Clock = utcnow, host: str = "127.0.0.1") -> Starlette:
    """The web app over ``config``'s database. ``token``: writes need it (``Authorization: Bearer``,
    or the cookie ``/login`` sets). ``host``: the address it is served on; a loopback one makes
    the app answer only requests naming a loopback host."""
    web = Web(config, token, clock, is_loopback(host))

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

    pages, api = Pages(web), Api(web)
    reads, writes = ["GET"], ["POST"]
    routes = [
        Route("/", pages.front, methods=reads),
        Route("/day/{day}", pages.day_page, methods=reads),
        Route("/days", pages.days_page, methods=reads),
        Route("/stories/{id:int}", pages.story_page, methods=reads),
        Route("/stories/{id:int}/read", pages.mark, methods=writes),
        Route("/stories/{id:int}/unread", pages.mark, methods=writes),
        Route("/stories/read", pages.mark, methods=writes),
        Route("/stories/unread", pages.mark, methods=writes),
        Route("/feeds", pages.feeds_page, methods=reads),
        Route("/feeds/stories.atom", pages.story_feed("atom"), methods=reads),
        Route("/feeds/stories.json", pages.story_feed("json"), methods=reads),
        Route("/search", pages.search_page, methods=reads),
        Route("/login", pages.login_page, methods=reads),
        Route("/login", pages.login, methods=writes),
        Route("/logout", pages.logout, methods=writes),
        Route("/healthz", api.healthz, methods=reads),
        Route("/api/stories", api.stories, methods=reads),
        Route("/api/stories/{id:int}", api.story, methods=reads),
        Route("/api/stories/{id:int}/read", api.mark, methods=writes),
        Route("/api/stories/{id:int}/unread", api.mark, methods=writes),
        Route("/api/stories/read", api.mark, methods=writes),
        Route("/api/stories/unread", api.mark, methods=writes),
        Route("/api/feeds", api.feeds, methods=reads),
        Route("/api/search", api.search, methods=reads),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Response | Awaitable[Response]]] = {
        HTTPException: http_error, UsageError: unusable, StorageError: unreadable, Exception: failure,
    }
    return Starlette(routes=routes, middleware=[Middleware(Guard, loopback=web.loopback)], exception_handlers=handlers,
                     lifespan=lifespan)
