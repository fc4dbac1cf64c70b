"""The JSON API under ``/api/``, in the CLI's ``--json`` shapes (``aggregator.shapes``), and
``/healthz``, which says whether the database can be read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import StorageError
from ..store import sqlite_file
from .params import SEARCH_LIMIT, json_ids, parse_day, parse_since, parse_statuses, search_query, story_id
from .state import Web


def as_json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status, headers={"Cache-Control": "no-cache"})


class Api:
    """The API's handlers and ``/healthz``, over ``web``'s state (``app.make_app`` maps the paths to them)."""

    def __init__(self, web: Web) -> None:
        self.web = web

    def stories(self, request: Request) -> Response:
        from ..shapes import story_dict

        params = request.query_params
        day_s, since_s = params.get("date"), params.get("since")
        if day_s and since_s:
            raise HTTPException(400, "give date or since, not both")
        now = self.web.clock()
        start = parse_since(since_s, now, self.web.config) if since_s else None
        day = parse_day(day_s) if day_s else None
        wanted = parse_statuses(params.get("status"))
        lib = self.web.library()
        stories = lib.stories_between(start, now + timedelta(days=1)) if start else lib.stories_on(day or lib.today())
        return as_json([story_dict(s) for s in stories if s.status in wanted])

    def story(self, request: Request) -> Response:
        from ..shapes import merged_away, story_dict

        lib = self.web.library()
        the_id = story_id(request)
        found = lib.story(the_id)
        if found is None:
            if (into := lib.merged_into(the_id)) is not None:  # merged away by the reader: say where it went
                return as_json(merged_away(the_id, into), 404)
            raise HTTPException(404, f"no story with id {request.path_params['id']}")
        return as_json(story_dict(found, with_text=True, timeline=lib.timeline(found), revisions=lib.revisions(found)))

    async def mark(self, request: Request) -> Response:
        """POST /api/stories/{id}/read|unread: the story as it is now. POST /api/stories/read|unread
        with {"ids": [...]}: {"marked": how many of them exist}."""
        from ..shapes import story_dict

        self.web.check_write(request)
        read = request.url.path.endswith("/read")
        lib = self.web.library()
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

    def feeds(self, request: Request) -> Response:
        from ..shapes import feed_dict

        lib = self.web.library()
        return as_json([feed_dict(f, lib.config.settings.schedule) for f in lib.feeds()])

    def search(self, request: Request) -> Response:
        from ..shapes import search_dict

        query = search_query(request)
        if not query:
            raise HTTPException(400, "q: give the words to search for")
        limit_s = request.query_params.get("limit", str(SEARCH_LIMIT))
        if not limit_s.isdigit() or not 1 <= int(limit_s) <= 500:
            raise HTTPException(400, f"limit: expected a number from 1 to 500, got {limit_s!r}")
        return as_json([search_dict(r) for r in self.web.library().search(query, int(limit_s))])

    def healthz(self, request: Request) -> Response:
        found = sqlite_file(self.web.config.database_url)
        if found is not None and not found.exists():  # (a reader opening a missing file would make an empty one)
            raise StorageError(f"{found}: no database here yet")
        lib = self.web.library()
        last = lib.last_poll_at()
        today = len(lib.store.story_ids_between(*lib.day_bounds(lib.today())))
        return as_json({"status": "ok", "last_poll_at": last.isoformat() if last else None, "stories_today": today})
