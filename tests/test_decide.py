"""decide.py as pure functions of (feed state, outcome, now): when to poll next and what changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from aggregator.config import ScheduleSettings
from aggregator.decide import after_failure, after_success, jittered, parse_retry_after
from aggregator.errors import BodyTooLarge, FetchError, HTTPStatusError, ParseError
from aggregator.models import FeedState, FetchResult, ParsedFeed

NOW = datetime(2024, 3, 5, 12, 0, tzinfo=timezone.utc)
SCHED = ScheduleSettings()  # 15 min default, 60 s .. 24 h, jitter 0.1, max backoff 6 h
NO_JITTER = ScheduleSettings(jitter=0)
URLS = [f"https://feed{i}.example.org/rss" for i in range(25)]


def feed(url: str = "https://news.example.org/rss", interval: int = 900, errors: int = 0, **kw: object) -> FeedState:
    return FeedState(id=1, url=url, name="News", interval_s=interval, error_count=errors, **kw)  # type: ignore[arg-type]


def ok(status: int = 200, etag: str | None = '"v2"', last_modified: str | None = "Tue, 05 Mar 2024 11:00:00 GMT", permanent_url: str | None = None) -> FetchResult:
    return FetchResult(
        url="https://news.example.org/rss", final_url=permanent_url or "https://news.example.org/rss", status=status,
        content=b"" if status == 304 else b"<rss/>", etag=etag, last_modified=last_modified, permanent_url=permanent_url,
    )


def parsed(ttl: int | None = None) -> ParsedFeed:
    return ParsedFeed(title="News", site_url=None, lang=None, entries=(), ttl_minutes=ttl)


def delay(update_time: datetime) -> float:
    return (update_time - NOW).total_seconds()


# -- success -----------------------------------------------------------------------------------


def test_success_without_jitter_is_exactly_the_interval() -> None:
    update = after_success(feed(interval=900), ok(), parsed(), NOW, NO_JITTER)
    assert update.next_poll_at == NOW + timedelta(seconds=900)
    assert update.success and update.error_count == 0 and update.last_error is None
    assert update.new_url is None and update.disabled_reason is None


def test_success_jitter_is_bounded_deterministic_and_spreads_feeds() -> None:
    delays = []
    for url in URLS:
        first = after_success(feed(url), ok(), parsed(), NOW, SCHED)
        again = after_success(feed(url), ok(), parsed(), NOW, SCHED)
        assert first.next_poll_at == again.next_poll_at  # same inputs, same schedule
        d = delay(first.next_poll_at)
        assert 900 * 0.9 <= d <= 900 * 1.1
        delays.append(d)
    assert len({round(d) for d in delays}) > 10, "feeds should not all poll at the same moment"
    assert min(delays) < 900 < max(delays)


def test_jittered_stays_within_bounds() -> None:
    for i in range(200):
        when = NOW + timedelta(minutes=i)
        value = jittered(1000, "https://x.example/rss", when, 0.2)
        assert 800 <= value <= 1200
    assert jittered(1000, "k", NOW, 0) == 1000


def test_ttl_raises_the_interval() -> None:
    update = after_success(feed(interval=900), ok(), parsed(ttl=60), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 3600


def test_ttl_never_lowers_the_interval() -> None:
    update = after_success(feed(interval=1800), ok(), parsed(ttl=5), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 1800


@pytest.mark.parametrize(
    ("interval", "ttl", "expected"),
    [(10, None, 60), (0, None, 60), (900, None, 900), (200_000, None, 86_400), (900, 100_000, 86_400)],
)
def test_interval_is_clamped_to_min_and_max(interval: int, ttl: int | None, expected: float) -> None:
    update = after_success(feed(interval=interval), ok(), parsed(ttl=ttl), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == expected


def test_custom_bounds_clamp_too() -> None:
    sched = ScheduleSettings(jitter=0, min_interval=300, max_interval=600)
    assert delay(after_success(feed(interval=60), ok(), parsed(), NOW, sched).next_poll_at) == 300
    assert delay(after_success(feed(interval=3600), ok(), parsed(), NOW, sched).next_poll_at) == 600


def test_success_resets_errors() -> None:
    update = after_success(feed(errors=4, last_error="HTTP 500"), ok(), parsed(), NOW, NO_JITTER)
    assert update.error_count == 0 and update.last_error is None
    assert delay(update.next_poll_at) == 900  # no leftover backoff


def test_200_takes_the_new_validators() -> None:
    update = after_success(feed(etag='"v1"', last_modified="Mon, 04 Mar 2024 00:00:00 GMT"), ok(), parsed(), NOW, SCHED)
    assert update.etag == '"v2"'
    assert update.last_modified == "Tue, 05 Mar 2024 11:00:00 GMT"


def test_304_keeps_the_validators() -> None:
    old = feed(etag='"v1"', last_modified="Mon, 04 Mar 2024 00:00:00 GMT")
    update = after_success(old, ok(status=304, etag=None, last_modified=None), None, NOW, NO_JITTER)
    assert update.etag == '"v1"'
    assert update.last_modified == "Mon, 04 Mar 2024 00:00:00 GMT"
    assert update.success
    assert delay(update.next_poll_at) == 900


def test_permanent_redirect_sets_new_url() -> None:
    update = after_success(feed(), ok(permanent_url="https://new.example.org/feed.xml"), parsed(), NOW, SCHED)
    assert update.new_url == "https://new.example.org/feed.xml"


def test_plain_success_has_no_new_url() -> None:
    assert after_success(feed(), ok(), parsed(), NOW, SCHED).new_url is None


# -- failures --------------------------------------------------------------------------------------


def test_failures_back_off_exponentially_and_cap() -> None:
    state = feed(interval=900)
    delays = []
    for _ in range(10):
        update = after_failure(state, FetchError(state.url, "connection refused"), NOW, NO_JITTER)
        assert not update.success
        assert update.error_count == state.error_count + 1
        assert update.last_error == "connection refused"
        delays.append(delay(update.next_poll_at))
        state = feed(interval=900, errors=update.error_count)
    assert delays[:4] == [1800, 3600, 7200, 14400]
    assert all(b >= a for a, b in zip(delays, delays[1:], strict=False))
    assert delays[4:] == [6 * 3600] * 6  # capped at max_backoff


def test_backoff_respects_a_custom_cap() -> None:
    sched = ScheduleSettings(jitter=0, max_backoff=3000)
    update = after_failure(feed(interval=900, errors=7), ParseError("u", "bad"), NOW, sched)
    assert delay(update.next_poll_at) == 3000


def test_huge_error_counts_do_not_overflow() -> None:
    update = after_failure(feed(errors=10_000), FetchError("u", "x"), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 6 * 3600
    assert update.error_count == 10_001


def test_failure_keeps_validators() -> None:
    update = after_failure(feed(etag='"v1"', last_modified="Mon, 04 Mar 2024 00:00:00 GMT"), BodyTooLarge("u", "big"), NOW, SCHED)
    assert (update.etag, update.last_modified) == ('"v1"', "Mon, 04 Mar 2024 00:00:00 GMT")


def test_backoff_with_jitter_is_deterministic() -> None:
    a = after_failure(feed(errors=2), FetchError("u", "x"), NOW, SCHED)
    b = after_failure(feed(errors=2), FetchError("u", "x"), NOW, SCHED)
    assert a == b


def test_backoff_cap_holds_with_jitter() -> None:
    for url in URLS:
        update = after_failure(feed(url, errors=15), FetchError(url, "down"), NOW, SCHED)
        assert delay(update.next_poll_at) <= SCHED.max_backoff


@pytest.mark.parametrize("status", [404, 500, 502, 403])
def test_other_statuses_back_off(status: int) -> None:
    update = after_failure(feed(), HTTPStatusError("u", status), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 1800
    assert update.disabled_reason is None
    assert update.last_error == f"HTTP {status}"


def test_410_disables_the_feed_with_a_reason() -> None:
    update = after_failure(feed(), HTTPStatusError("https://news.example.org/rss", 410), NOW, SCHED)
    assert update.disabled_reason is not None
    assert "410" in update.disabled_reason and "Gone" in update.disabled_reason
    assert not update.success


def test_404_does_not_disable() -> None:
    assert after_failure(feed(errors=30), HTTPStatusError("u", 404), NOW, SCHED).disabled_reason is None


# -- Retry-After -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds(status: int) -> None:
    update = after_failure(feed(), HTTPStatusError("u", status, retry_after="1200"), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 1200


def test_retry_after_http_date() -> None:
    when = format_datetime(NOW + timedelta(hours=2), usegmt=True)
    update = after_failure(feed(), HTTPStatusError("u", 503, retry_after=when), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 7200


def test_retry_after_is_clamped() -> None:
    too_soon = after_failure(feed(), HTTPStatusError("u", 429, retry_after="1"), NOW, NO_JITTER)
    assert delay(too_soon.next_poll_at) == 900  # never sooner than the feed's own interval
    too_late = after_failure(feed(), HTTPStatusError("u", 429, retry_after=str(30 * 86400)), NOW, NO_JITTER)
    assert delay(too_late.next_poll_at) == SCHED.max_backoff
    past = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    in_the_past = after_failure(feed(), HTTPStatusError("u", 503, retry_after=past), NOW, NO_JITTER)
    assert delay(in_the_past.next_poll_at) == 900


def test_retry_after_cuts_a_long_backoff_to_the_feeds_interval() -> None:
    update = after_failure(feed(errors=8), HTTPStatusError("u", 429, retry_after="300"), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 900
    update = after_failure(feed(errors=8), HTTPStatusError("u", 429, retry_after="3000"), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 3000


def test_a_server_always_saying_retry_now_is_not_polled_more_than_a_healthy_feed() -> None:
    state = feed()
    for _ in range(10):
        update = after_failure(state, HTTPStatusError("u", 503, retry_after="0"), NOW, SCHED)
        assert delay(update.next_poll_at) >= 900
        state = feed(errors=update.error_count)


def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    update = after_failure(feed(), HTTPStatusError("u", 503, retry_after="soon, promise"), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 1800


def test_retry_after_is_ignored_for_other_statuses() -> None:
    update = after_failure(feed(), HTTPStatusError("u", 500, retry_after="5000"), NOW, NO_JITTER)
    assert delay(update.next_poll_at) == 1800


def test_retry_after_is_never_undercut_by_jitter() -> None:
    for url in URLS:
        update = after_failure(feed(url), HTTPStatusError(url, 429, retry_after="120"), NOW, SCHED)
        assert delay(update.next_poll_at) >= 120


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 45 ", 45.0),
        ("0", 0.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Tue, 05 Mar 2024 13:00:00 GMT", 3600.0),
        (format_datetime(NOW - timedelta(days=1), usegmt=True), 0.0),
        ("tomorrow", None),
        ("", None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds
