"""When to poll next and what a poll changes on a feed: pure functions of (state, outcome, now).

Rules:
- success (200 or 304): next poll after the feed's interval, with a
  deterministic jitter so feeds spread out; errors reset. The interval is the
  configured one, raised to what the feed has *learned*: half its mean gap
  between posts (a feed that posts weekly is not polled every five minutes),
  its ``<ttl>``, and the server's Cache-Control max-age / Expires; always
  within [min_interval, max_interval].
- a permanent redirect (every hop 301/308) moves the feed to its new URL, but
  only once that URL answered with a usable feed.
- HTTP 410 Gone disables the feed, with the reason kept.
- 429/503 with Retry-After: wait as told, clamped to [min_interval, max_backoff].
- ``now`` is when the answer (or the failure) came, not when the round began: a
  "Retry-After: 120" that came 40 s into a round means 120 s from then.
- any other failure: exponential backoff from the interval, capped at max_backoff.
- during a global outage (every recent poll failed at the network level,
  across hosts) a failure is not held against the feed: retry soon, count nothing.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from .config import ScheduleSettings
from .errors import FeedError, HTTPStatusError
from .models import FeedState, FeedUpdate, FetchResult, ParsedFeed

OUTAGE_RETRY_S = 300.0
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
POSTING_SAMPLE = 20  # entries used to estimate a feed's posting rate


def clamp(seconds: float, sched: ScheduleSettings) -> float:
    return min(max(seconds, sched.min_interval), sched.max_interval)


def base_interval(feed: FeedState, sched: ScheduleSettings) -> float:
    """Seconds between polls (see ``interval_in_force``)."""
    return interval_in_force(feed, sched)[0]


def interval_in_force(feed: FeedState, sched: ScheduleSettings) -> tuple[float, str]:
    """Seconds between polls, and why: the config's interval where it sets one; else the default,
    raised to what the feed taught (its posting rate, <ttl>, Cache-Control); within the bounds."""
    if feed.interval_set:
        wanted, why = float(feed.interval_s), "set in the config"
    elif feed.learned_interval_s and feed.learned_interval_s > feed.interval_s:
        wanted, why = float(feed.learned_interval_s), "learned from the feed (posting rate, ttl, cache headers)"
    else:
        wanted, why = float(feed.interval_s), "the default interval (schedule.default_interval)"
    seconds = clamp(wanted, sched)
    if seconds > wanted:
        why += ", raised to schedule.min_interval"
    elif seconds < wanted:
        why += ", capped at schedule.max_interval"
    return seconds, why


def posting_interval(parsed: ParsedFeed, now: datetime) -> float | None:
    """Half the mean gap between the feed's recent posts (seconds), or None with too few dates.

    A feed gone quiet counts the silence since its last post as a gap too."""
    dates = sorted({e.published for e in parsed.entries if e.published and e.published <= now}, reverse=True)[:POSTING_SAMPLE]
    if len(dates) < 3:
        return None
    mean_gap = (dates[0] - dates[-1]).total_seconds() / (len(dates) - 1)
    silence = (now - dates[0]).total_seconds()
    return max(mean_gap, silence / 2) / 2


def cache_hint(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the server says the response stays fresh (Cache-Control max-age, else Expires)."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    if match:
        return float(match.group(1))
    expires = headers.get("expires")
    if expires:
        try:
            when = parsedate_to_datetime(expires)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is not None:
            return max(0.0, (when - now).total_seconds())
    return None


def learned_interval(feed: FeedState, result: FetchResult, parsed: ParsedFeed | None, now: datetime) -> int | None:
    """What this poll teaches about how often the feed is worth asking (before bounds)."""
    hints = [cache_hint(result.headers, now)]
    if parsed is not None:
        hints += [posting_interval(parsed, now), parsed.ttl_minutes * 60.0 if parsed.ttl_minutes else None]
    else:  # 304: the body did not change; keep what we learned from it
        hints.append(float(feed.learned_interval_s) if feed.learned_interval_s else None)
    known = [h for h in hints if h]
    return int(max(known)) if known else None


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
    learned = learned_interval(feed, result, parsed, now)
    interval = base_interval(replace(feed, learned_interval_s=learned), sched)  # what this poll taught, in place of the last lesson
    keep_validators = result.not_modified
    return FeedUpdate(
        next_poll_at=now + timedelta(seconds=jittered(interval, feed.url, now, sched.jitter)),
        error_count=0,
        last_error=None,
        etag=feed.etag if keep_validators else result.etag,
        last_modified=feed.last_modified if keep_validators else result.last_modified,
        success=True,
        new_url=result.permanent_url,
        learned_interval_s=learned,
    )


def after_failure(feed: FeedState, error: FeedError, now: datetime, sched: ScheduleSettings) -> FeedUpdate:
    """State after a failed poll: backoff, Retry-After, or Gone."""
    errors = feed.error_count + 1
    # Jitter first, bounds last: the cap is a promise, and so is "not before Retry-After".
    delay = jittered(base_interval(feed, sched) * (2 ** min(errors, 20)), feed.url, now, sched.jitter / 2)
    delay = min(delay, sched.max_backoff)
    disabled = None
    if isinstance(error, HTTPStatusError):
        if error.status == 410:
            disabled = "HTTP 410 Gone: the publisher removed this feed"
        elif error.status in (429, 503) and error.retry_after:
            wait = parse_retry_after(error.retry_after, now)
            if wait is not None:
                # The server says when it expects to be ready: that may cut a long backoff short, but
                # never below the feed's normal interval (a server answering "Retry-After: 0" to
                # every request would otherwise be polled every minute, more than a healthy feed).
                spread = wait * (1 + abs(jittered(1.0, feed.url, now, sched.jitter / 2) - 1))  # only ever later
                delay = min(max(spread, base_interval(feed, sched), sched.min_interval), sched.max_backoff)
    return FeedUpdate(
        next_poll_at=now + timedelta(seconds=delay),
        error_count=errors,
        last_error=error.message,
        etag=feed.etag,
        last_modified=feed.last_modified,
        success=False,
        disabled_reason=disabled,
        learned_interval_s=feed.learned_interval_s,
    )


def during_outage(feed: FeedState, error: FeedError, now: datetime, sched: ScheduleSettings) -> FeedUpdate:
    """A network failure while everything fails: retry soon, and do not count it against the feed."""
    delay = min(max(OUTAGE_RETRY_S, sched.min_interval), base_interval(feed, sched))
    return FeedUpdate(
        next_poll_at=now + timedelta(seconds=jittered(delay, feed.url, now, sched.jitter)),
        error_count=feed.error_count,
        last_error=f"{error.message} (during a global network outage; not counted against this feed)",
        etag=feed.etag,
        last_modified=feed.last_modified,
        success=False,
        learned_interval_s=feed.learned_interval_s,
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


def health(feed: FeedState) -> str:
    """One word (and a count) for a feed's state: ok, never polled, never read, backing off, disabled."""
    if feed.disabled_reason:
        return "disabled"
    if feed.error_count:
        return f"backing off ({feed.error_count} failure{'s' if feed.error_count != 1 else ''} in a row)"
    if feed.last_error and feed.last_success_at is None:
        return "retrying (network outage)"
    if feed.last_success_at is None:  # polled and failed before, then re-enabled: it has a past
        return "never polled" if feed.last_error_at is None else "never read"
    return "ok"
