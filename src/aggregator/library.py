"""``Library``: the stored feeds and stories, for the commands that read them (listing, a story,
the digest, feed health) and for the daemon's digest. Needs the config and the store only: no
fetcher, no dedup index, so reading commands start fast."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from .config import Config
from .errors import UsageError
from .models import FeedState, Revision, SearchHit, SearchResult, Story, TimelineEvent
from .store import StoreProtocol

if TYPE_CHECKING:
    from .digest import DigestFiles

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SEARCH_HITS_PER_STORY = 10  # matching articles read per story asked for (a story's hits beyond are not shown)


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
            [(f.url, f.name, int(f.interval or default), f.interval is not None) for f in self.config.feeds], refresh=refresh
        )
        if refresh:
            settings = self.config.settings
            fingerprint = hashlib.sha256(f"{settings.fetch.model_dump_json()}|{sorted(settings.allow_hosts)}".encode()).hexdigest()
            retried = self.store.fetch_settings_changed(fingerprint, [f.url for f in self.config.feeds], self.clock())
            if retried:
                log.info("the config's fetch settings changed: %d feed(s) backing off after errors are retried now", retried)

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

    def stories_between(self, start: datetime, end: datetime, activity: bool = True) -> list[Story]:
        """Stories with activity in [start, end) (a report published, or first seen, then: a story
        first seen today is today's whatever its dates say; ``activity`` False: published then), most
        sources first, then earliest reported."""
        stories = self.store.load_stories(self.store.story_ids_between(start, end, activity))
        return sorted(stories, key=lambda s: (-len(s.sources), -len(s.variants), s.first_reported_at, s.id))

    def stories_on(self, day: date) -> list[Story]:
        return self.stories_between(*self.day_bounds(day))

    def story(self, story_id: int) -> Story | None:
        found = self.store.load_stories([story_id], with_text=True)
        return found[0] if found else None

    def merged_into(self, story_id: int) -> int | None:
        """For a story the reader merged away (``story merge``): the story that holds its articles
        now (through later merges). None for any other id, and after the merge was undone."""
        return self.store.merged_into(story_id)

    # -- search and read state ------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchResult]:
        """Stories whose articles' titles or texts match every word of ``query`` (words, "quoted
        phrases"; no query syntax to get wrong), grouped by story, the story with the newest
        matching article first; at most ``limit`` stories."""
        from .store.search import terms

        words = terms(query)
        if not words:
            raise UsageError(f"nothing to search for in {query!r}: give words or \"a phrase\"")
        by_story: dict[int, list[SearchHit]] = {}
        for hit in self.store.search(words, limit=limit * SEARCH_HITS_PER_STORY):
            if hit.story_id in by_story or len(by_story) < limit:
                by_story.setdefault(hit.story_id, []).append(hit)
        found = {s.id: s for s in self.store.load_stories(list(by_story))}
        return [SearchResult(found[i], tuple(hits)) for i, hits in by_story.items() if i in found]

    def mark_read(self, story_ids: Sequence[int]) -> int:
        """Mark stories read now; returns how many exist."""
        return self.store.mark_read(story_ids, self.clock())

    def mark_unread(self, story_ids: Sequence[int]) -> int:
        """Forget that stories were read; returns how many exist."""
        return self.store.mark_unread(story_ids)

    def last_poll_at(self) -> datetime | None:
        """The latest time any configured feed was polled (success or error); None before the first."""
        times = [t for f in self.feeds() for t in (f.last_success_at, f.last_error_at) if t is not None]
        return max(times, default=None)

    def write_digest(self, day: date | None = None) -> DigestFiles:
        """Write storage/digests/YYYY-MM-DD.md and .html for a local day, the digests' index.html,
        and the story feeds stories.atom and stories.json beside them (each file atomically)."""
        return self.write_digests([day or self.today()])[0]

    def write_digests(self, days: Sequence[date]) -> list[DigestFiles]:
        """``write_digest`` for several days, the story feeds written once."""
        from dataclasses import replace

        from .digest import write_day
        from .storyfeeds import write_feed_files

        out, tz_name, now = self.config.digest_dir, self.config.settings.timezone, self.clock()
        latest = self.feed_stories()
        # The feeds first, so that the index links to them. Their time is their newest story's: an
        # unchanged stream gives the same files.
        atom, json = write_feed_files(out, latest, updated=max((s.updated_at for s in latest), default=now), tz_name=tz_name)
        written = []
        for day in days:
            stories = self.stories_on(day)[: self.config.settings.digest.max_stories]
            with_text = self.store.load_stories([s.id for s in stories], with_text=True)
            files = write_day(out, day, with_text, tz_name, generated_at=now)
            log.info("digest for %s: %d stories -> %s; %d stories -> %s", day, len(stories), files.markdown, len(latest), atom)
            written.append(replace(files, atom=atom, json=json))
        return written

    def feed_stories(self) -> list[Story]:
        """The story feeds' stories: those with a report published in the last 48 hours
        (``storyfeeds.WINDOW``), the most recently updated (a new variant) first, at most
        ``settings.digest.feed_max_stories``, with their text loaded."""
        from .storyfeeds import WINDOW

        now = self.clock()
        # Up to a day ahead too: a report its feed dates a little in the future is news now.
        # (By publication: a new subscription's backlog of old reports is no news for a feed reader.)
        recent = self.stories_between(now - WINDOW, now + timedelta(days=1), activity=False)
        recent.sort(key=lambda s: (s.updated_at, s.id), reverse=True)
        chosen = recent[: self.config.settings.digest.feed_max_stories]
        return self.store.load_stories([s.id for s in chosen], with_text=True)

    # -- a story's history ------------------------------------------------------------------

    def timeline(self, story: Story) -> list[TimelineEvent]:
        """What happened to a story, oldest first: each variant's arrival, each change of its
        canonical and why, each revision of an article by its feed, and each arrival that changed a
        figure's newest value ("killed: 12 → 15"). ``story`` as ``story()`` gives it (with text)."""
        from .timeline import with_figures

        return with_figures(story, self.store.timeline(story.id), self.store.revisions(story.id))

    def revisions(self, story: Story) -> list[Revision]:
        """The earlier versions of the story's articles (each article holds its latest), by article, oldest first."""
        return self.store.revisions(story.id)
