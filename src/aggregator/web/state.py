"""What the app's handlers share (``Web``): the config, the clock, the token, the one reading
``Library`` (opened on first need, and again after it could not be), and the page templates
with the filters they use."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..config import Config
from ..digest import safe_url, without_bidi_controls
from ..library import Clock, Library
from ..listing import kind_label, last_update, outlets_line
from ..models import SearchHit
from .security import check_write, session_cookie, signed_in

HERE = Path(__file__).parent


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


class Web:
    """The app's state: the config, the shared reading ``Library``, the templates and the token."""

    def __init__(self, config: Config, token: str | None, clock: Clock, loopback: bool) -> None:
        self.config = config
        self.token = token
        self.clock = clock
        self.loopback = loopback
        self.session = session_cookie(token)
        self._library: Library | None = None
        self._lock = threading.Lock()
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                               finalize=without_bidi_controls, trim_blocks=True, lstrip_blocks=True)
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
        """Whether this request may write (``security.signed_in``)."""
        return signed_in(request, self.token, self.session)

    def check_write(self, request: Request) -> None:
        """Refuse a write sent by another site, or without the token when there is one."""
        check_write(request, self.token, self.session)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.env.get_template(template).render(
            here=here, tz=self.config.settings.timezone, token_needed=self.token is not None, can_write=self.signed_in(request), **context)
        return HTMLResponse(html, status, headers={"Cache-Control": "no-cache"})
