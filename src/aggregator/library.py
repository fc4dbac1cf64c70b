"""``Library``: the stored feeds and stories, for the commands that read them (listing, a story,
the digest, feed health) and for the daemon's digest. Needs the config and the store only: no
fetcher, no dedup index, so reading commands start fast."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from .config import Config
from .models import FeedState, SearchResult, Story
from .store import StoreProtocol
from .urls import host_of

if TYPE_CHECKING:
    from .digest import DigestFiles

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Library:
    """The configured feeds and the stored stories of one config."""

    def __init__(self, config: Config, store: StoreProtocol, clock: Clock = utcnow) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def close(self) -> None:
        self.store.close()

    # -- feeds ----------------------------------------------------------------------

    def sync_feeds(self, refresh: bool = True) -> None:
        """Feeds new to the config are added; ``refresh``: known ones take the config's name and
        interval (only the commands that poll do this: a second config listing the same feed must
        not retune the daemon that polls it)."""
        default = self.config.settings.schedule.default_interval
        self.store.sync_feeds(
            [(f.url, f.name or host_of(f.url), int(f.interval or default)) for f in self.config.feeds], refresh=refresh
        )

    def feeds(self) -> list[FeedState]:
        """The configured feeds with their stored state."""
        return self.store.feeds(config_urls=[f.url for f in self.config.feeds])

    # -- stories ----------------------------------------------------------------------

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """[start, end) of a local calendar day, in UTC."""
        start = datetime.combine(day, time(0), tzinfo=self.config.tz)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.config.tz)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)

    def today(self) -> date:
        return self.clock().astimezone(self.config.tz).date()

    def stories_between(self, start: datetime, end: datetime) -> list[Story]:
        """Stories with a report in [start, end), most sources first, then earliest reported."""
        stories = self.store.load_stories(self.store.story_ids_between(start, end))
        return sorted(stories, key=lambda s: (-len(s.sources), -len(s.variants), s.first_reported_at, s.id))

    def stories_on(self, day: date) -> list[Story]:
        return self.stories_between(*self.day_bounds(day))

    def story(self, story_id: int) -> Story | None:
        found = self.store.load_stories([story_id], with_text=True)
        return found[0] if found else None

    # -- search and read state ------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchResult]:
        """Stories whose articles' titles or texts match every word of ``query`` (words, "quoted
        phrases"; no query syntax to get wrong), grouped by story, the story with the newest
        matching article first; at most ``limit`` stories."""
        raise NotImplementedError

    def mark_read(self, story_ids: Sequence[int]) -> int:
        """Mark stories read now; returns how many exist."""
        raise NotImplementedError

    def mark_unread(self, story_ids: Sequence[int]) -> int:
        """Forget that stories were read; returns how many exist."""
        raise NotImplementedError

    def last_poll_at(self) -> datetime | None:
        """The latest time any configured feed was polled (success or error); None before the first."""
        raise NotImplementedError

    def write_digest(self, day: date | None = None) -> DigestFiles:
        """Write storage/digests/YYYY-MM-DD.md and .html for a local day (atomically)."""
        from .digest import DigestFiles, render_digest, write_atomically

        day = day or self.today()
        stories = self.stories_on(day)[: self.config.settings.digest.max_stories]
        with_text = self.store.load_stories([s.id for s in stories], with_text=True)
        markdown, html = render_digest(day, with_text, self.config.settings.timezone, generated_at=self.clock())
        out = self.config.digest_dir
        md_path, html_path = out / f"{day.isoformat()}.md", out / f"{day.isoformat()}.html"
        write_atomically(md_path, markdown)
        write_atomically(html_path, html)
        log.info("digest for %s: %d stories -> %s", day, len(stories), md_path)
        return DigestFiles(md_path, html_path, len(stories))
