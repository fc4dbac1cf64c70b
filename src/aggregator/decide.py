"""When to poll next and what a poll changes on a feed: pure functions of (state, outcome, now).

Rules:
- success (200 or 304): next poll after the feed's interval (at least its
  ``<ttl>``), with a deterministic jitter so feeds spread out; errors reset;
  a permanent redirect (every hop 301/308) moves the feed to its new URL, but
  only once that URL answered with a usable feed.
- HTTP 410 Gone disables the feed, with the reason kept.
- 429/503 with Retry-After: wait as told, clamped to [min_interval, max_backoff].
- any other failure: exponential backoff from the interval, capped at max_backoff.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from .config import ScheduleSettings
from .errors import FeedError, HTTPStatusError
from .models import FeedState, FeedUpdate, FetchResult, ParsedFeed


def base_interval(feed: FeedState, sched: ScheduleSettings, parsed: ParsedFeed | None = None) -> float:
    """The feed's own interval, raised to its <ttl>, within the configured bounds."""
    interval = float(feed.interval_s)
    if parsed is not None and parsed.ttl_minutes:
        interval = max(interval, parsed.ttl_minutes * 60.0)
    return min(max(interval, sched.min_interval), sched.max_interval)


def jittered(seconds: float, key: str, now: datetime, jitter: float) -> float:
    """``seconds`` spread by ±jitter, deterministic for a given feed and time."""
    if jitter <= 0:
        return seconds
    fraction = zlib.crc32(f"{key}|{now.isoformat()}".encode()) / 0xFFFFFFFF  # 0..1
    return seconds * (1.0 + jitter * (2.0 * fraction - 1.0))


def after_success(
    feed: FeedState, result: FetchResult, parsed: ParsedFeed | None, now: datetime, sched: ScheduleSettings
) -> FeedUpdate:
    """State after a 200 (with a parsed feed) or a 304."""
    delay = jittered(base_interval(feed, sched, parsed), feed.url, now, sched.jitter)
    keep_validators = result.not_modified
    return FeedUpdate(
        next_poll_at=now + timedelta(seconds=delay),
        error_count=0,
        last_error=None,
        etag=feed.etag if keep_validators else result.etag,
        last_modified=feed.last_modified if keep_validators else result.last_modified,
        success=True,
        new_url=result.permanent_url,
    )


def after_failure(feed: FeedState, error: FeedError, now: datetime, sched: ScheduleSettings) -> FeedUpdate:
    """State after a failed poll: backoff, Retry-After, or Gone."""
    errors = feed.error_count + 1
    interval = base_interval(feed, sched)
    delay = min(interval * (2 ** min(errors, 20)), sched.max_backoff)
    disabled = None
    if isinstance(error, HTTPStatusError):
        if error.status == 410:
            disabled = "HTTP 410 Gone: the publisher removed this feed"
        elif error.status in (429, 503) and error.retry_after:
            wait = parse_retry_after(error.retry_after, now)
            if wait is not None:
                delay = min(max(wait, sched.min_interval), sched.max_backoff)
    return FeedUpdate(
        next_poll_at=now + timedelta(seconds=jittered(delay, feed.url, now, sched.jitter / 2)),
        error_count=errors,
        last_error=error.message,
        etag=feed.etag,
        last_modified=feed.last_modified,
        success=False,
        disabled_reason=disabled,
    )


def parse_retry_after(value: str, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
