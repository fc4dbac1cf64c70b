"""The HTML pages: ``/`` (what is unread or updated, today and the two days before), ``/day/YYYY-MM-DD``,
``/days``, ``/stories/{id}``, ``/feeds``, ``/search?q=``, ``/login``; the forms that mark stories
read or unread and sign in or out; and the story feeds ``/feeds/stories.atom`` and ``.json``."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..digest import safe_url
from ..models import Revision, Story
from .params import SEARCH_LIMIT, form_fields, form_ids, parse_day, search_query, story_id
from .security import AUTH_COOKIE, local_next, refuse_cross_site
from .state import Web

RECENT_DAYS = 2  # the front page: today and the two days before
DAYS_LISTED = 14  # /days
VISIT_GAP = timedelta(minutes=30)  # a visit ends after this long without a look at the front page
VISIT_COOKIE = "aggregator_visit"


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


class Pages:
    """The pages' handlers, over ``web``'s state (``app.make_app`` maps the paths to them)."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def _stories_page(self, request: Request, stories: list[Story], **context: Any) -> HTMLResponse:
        return self.web.page(request, "stories.html", stories=stories, **context)

    def front(self, request: Request) -> Response:
        lib = self.web.library()
        now, today = self.web.clock(), lib.today()
        start = lib.day_bounds(today - timedelta(days=RECENT_DAYS))[0]
        stories = [s for s in lib.stories_between(start, now + timedelta(days=1)) if s.status != "read"]
        since, cookie = visit(request.cookies.get(VISIT_COOKIE), now)
        fresh = {s.id for s in stories if since and any(v.first_seen_at > since for v in s.variants)}
        today_count = len(lib.store.story_ids_between(*lib.day_bounds(today)))
        response = self._stories_page(request, stories, title="What's new", front=True, day=today, since=since, fresh=fresh,
                                      today_count=today_count, first_day=today - timedelta(days=RECENT_DAYS))
        response.set_cookie(VISIT_COOKIE, cookie, max_age=400 * 86400, httponly=True, samesite="lax")
        return response

    def day_page(self, request: Request) -> Response:
        day = parse_day(request.path_params["day"])
        lib = self.web.library()
        today = lib.today()
        return self._stories_page(request, lib.stories_on(day), title=f"Stories of {day.isoformat()}", day=day, today=today,
                                  prev_day=day - timedelta(days=1) if day > date(1970, 1, 1) else None,
                                  next_day=day + timedelta(days=1) if day < today else None, fresh=set())

    def days_page(self, request: Request) -> Response:
        if chosen := request.query_params.get("date"):  # the date picker's GET form
            return RedirectResponse(f"/day/{parse_day(chosen).isoformat()}", 303)
        lib = self.web.library()
        today = lib.today()
        days = [today - timedelta(days=n) for n in range(DAYS_LISTED)]
        counts = [(d, len(lib.store.story_ids_between(*lib.day_bounds(d)))) for d in days]
        return self.web.page(request, "days.html", title="Days", counts=counts, today=today, earlier=days[-1] - timedelta(days=1))

    def story_page(self, request: Request) -> Response:
        lib = self.web.library()
        the_id = story_id(request)
        found = lib.story(the_id)
        if found is None:
            if (into := lib.merged_into(the_id)) is not None:  # merged away by the reader: the story it went into
                return RedirectResponse(f"/stories/{into}", 303)
            raise HTTPException(404, f"no story with id {request.path_params['id']}")
        from ..facts import story_facts

        earlier: dict[int, list[Revision]] = {}  # article -> its earlier versions, oldest first
        for r in lib.revisions(found):
            earlier.setdefault(r.article_id, []).append(r)
        day = found.first_reported_at.astimezone(self.web.config.tz).date()
        return self.web.page(request, "story.html", title=found.title, story=found, day=day, facts=story_facts(found),
                             timeline=lib.timeline(found), earlier=earlier,
                             new={v.article_id for v in found.new_variants} if found.read_at else set())

    def feeds_page(self, request: Request) -> Response:
        from ..decide import health

        feeds = self.web.library().feeds()
        return self.web.page(request, "feeds.html", title="Feeds", feeds=[(f, health(f), safe_url(f.url)) for f in feeds])

    def search_page(self, request: Request) -> Response:
        query = search_query(request)
        results = self.web.library().search(query, SEARCH_LIMIT) if query else []
        return self.web.page(request, "search.html", title=f"Search: {query}" if query else "Search", q=query, results=results,
                             limit=SEARCH_LIMIT)

    async def mark(self, request: Request) -> Response:
        """POST /stories/{id}/read|unread, and /stories/read|unread (every ``id`` field): back to ``next``."""
        self.web.check_write(request)
        fields = await form_fields(request)
        read = request.url.path.endswith("/read")
        if "id" in request.path_params:
            ids, back = [story_id(request)], f"/stories/{request.path_params['id']}"
        else:
            ids, back = form_ids(fields.get("id", [])), "/"
        lib = self.web.library()
        found = await run_in_threadpool(lib.mark_read if read else lib.mark_unread, ids)
        if "id" in request.path_params and not found:
            raise HTTPException(404, f"no story with id {ids[0]}")
        return RedirectResponse(local_next((fields.get("next") or [""])[0], back), 303)

    def login_page(self, request: Request) -> Response:
        return self.web.page(request, "login.html", title="Sign in", next=local_next(request.query_params.get("next"), "/"))

    async def login(self, request: Request) -> Response:
        refuse_cross_site(request)
        fields = await form_fields(request)
        given = (fields.get("token") or [""])[0]
        back = local_next((fields.get("next") or [""])[0], "/")
        if self.web.token is None or self.web.session is None:
            return RedirectResponse(back, 303)
        if not hmac.compare_digest(given.encode(), self.web.token.encode()):
            return self.web.page(request, "login.html", 403, title="Sign in", next=back, wrong=True)
        response = RedirectResponse(back, 303)
        response.set_cookie(AUTH_COOKIE, self.web.session, max_age=30 * 86400, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        refuse_cross_site(request)
        response = RedirectResponse("/", 303)
        response.delete_cookie(AUTH_COOKIE, httponly=True, samesite="strict")
        return response

    def story_feed(self, kind: str) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            from .. import storyfeeds  # (another module's: loaded only when a feed is asked for)

            lib = self.web.library()
            stories = lib.feed_stories()
            updated = max((s.updated_at for s in stories), default=self.web.clock())
            render = storyfeeds.atom_feed if kind == "atom" else storyfeeds.json_feed
            body = render(stories, base_url=str(request.base_url), title="aggregator: stories", updated=updated,
                          tz_name=self.web.config.settings.timezone)
            media = "application/atom+xml; charset=utf-8" if kind == "atom" else "application/feed+json"
            return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

        return endpoint
