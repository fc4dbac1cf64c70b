"""What a request gives, checked: story ids in the path, dates, ``since``, statuses, search words,
and form or JSON bodies (at most 64 KiB). Anything out of range is an ``HTTPException`` (400, 404
or 413) that says which parameter and what was expected."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..config import Config

MAX_FORM_BYTES = 64 * 1024
MAX_QUERY_CHARS = 500
MAX_ID = 2**63 - 1
SEARCH_LIMIT = 50
STATUSES = ("unread", "updated", "read")


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


def form_ids(values: Sequence[str]) -> list[int]:
    ids = [int(v) for v in values if v.isdigit() and 1 <= int(v) <= MAX_ID]
    if len(ids) != len(values) or not ids:
        raise HTTPException(400, "id: expected one or more story ids")
    return ids


async def json_ids(request: Request) -> list[int]:
    try:
        ids = json.loads(await body_of(request))["ids"]
    except (ValueError, TypeError, KeyError):
        ids = None
    if not isinstance(ids, list) or not ids or not all(type(i) is int and 1 <= i <= MAX_ID for i in ids):
        raise HTTPException(400, 'expected a JSON body {"ids": [story ids]}')
    return ids
