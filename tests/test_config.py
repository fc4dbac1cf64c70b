"""load_config on real YAML files: defaults, durations, paths, and one clear error per mistake."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from aggregator import config as cfg
from aggregator.config import load_config
from aggregator.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config" / "feeds.yaml"


def write(directory: Path, text: str, name: str = "feeds.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message, f"error does not name the file: {message}"
    return message.replace(str(path), "<file>")  # so that words in tmp_path's name cannot satisfy an assertion


# -- defaults and values -------------------------------------------------------------------


def test_empty_file_gives_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    s = config.settings
    assert config.feeds == ()
    assert s.timezone == "UTC"
    assert s.schedule.default_interval == 15 * 60 == cfg.DEFAULT_INTERVAL_S
    assert s.schedule.min_interval == 60
    assert s.schedule.max_interval == 24 * 3600
    assert s.schedule.max_backoff == 6 * 3600
    assert s.schedule.jitter == pytest.approx(0.1)
    assert s.fetch.max_body_bytes == 5 * 1024 * 1024
    assert s.fetch.per_host_concurrency == 2
    assert s.fetch.max_redirects == 5
    assert s.fetch.user_agent.startswith("aggregator/")
    assert s.dedup.window_hours == 72
    assert s.digest.time.hour == 7 and s.digest.time.minute == 0
    assert config.path == tmp_path / "feeds.yaml"


def test_feeds_and_settings_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        settings:
          timezone: Europe/Paris
          digest:
            time: "06:30"
            max_stories: 20
        feeds:
          - url: https://news.example.com/rss
            name: Example News
          - url: http://blog.example.org/atom.xml
            interval: 2h
        """,
    )
    config = load_config(path)
    assert [f.url for f in config.feeds] == ["https://news.example.com/rss", "http://blog.example.org/atom.xml"]
    assert config.feeds[0].name == "Example News" and config.feeds[0].interval is None
    assert config.feeds[1].interval == 7200
    assert str(config.tz) == "Europe/Paris"
    assert (config.settings.digest.time.hour, config.settings.digest.time.minute) == (6, 30)
    assert config.settings.digest.max_stories == 20


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("90s", 90), ("2h", 7200), ("1d", 86400), ("500ms", 0.5), ("1.5h", 5400), (" 45 m ", 2700), (120, 120), (2.5, 2.5)],
)
def test_durations(tmp_path: Path, text: object, seconds: float) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"settings": {"schedule": {"default_interval": text}}}), encoding="utf-8")
    assert load_config(path).settings.schedule.default_interval == pytest.approx(seconds)


def test_durations_everywhere(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        settings:
          fetch: {connect_timeout: 3s, read_timeout: 10s, total_deadline: 1m}
          schedule: {min_interval: 2m, max_interval: 12h, max_backoff: 3h}
        """,
    )
    s = load_config(path).settings
    assert (s.fetch.connect_timeout, s.fetch.read_timeout, s.fetch.total_deadline) == (3, 10, 60)
    assert (s.schedule.min_interval, s.schedule.max_interval, s.schedule.max_backoff) == (120, 43200, 10800)


# -- storage paths ---------------------------------------------------------------------------


def test_relative_storage_is_resolved_against_the_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf_dir = tmp_path / "etc" / "aggregator"
    conf_dir.mkdir(parents=True)
    path = write(conf_dir, "settings:\n  storage: data/store\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory must not matter
    config = load_config(path)
    assert config.storage_dir == (conf_dir / "data" / "store").resolve()
    assert config.storage_dir.is_absolute()
    assert config.digest_dir == config.storage_dir / "digests"
    assert config.database_url == f"sqlite:///{config.storage_dir / 'aggregator.db'}"


def test_relative_config_path_resolves_storage_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", "settings:\n  storage: ./state\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/feeds.yaml")
    assert config.storage_dir == (tmp_path / "conf" / "state").resolve()


def test_default_storage_is_next_to_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    config = load_config(write(tmp_path / "config", "feeds: []\n"))
    assert config.storage_dir == (tmp_path / "storage").resolve()


def test_absolute_storage_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "abs-store"
    config = load_config(write(tmp_path, f"settings:\n  storage: {target}\n"))
    assert config.storage_dir == target


def test_explicit_database_url_wins(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "settings:\n  database_url: postgresql://db.internal/agg\n"))
    assert config.database_url == "postgresql://db.internal/agg"


# -- one clear error per mistake -------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = config_error(tmp_path / "nope.yaml")
    assert "not found" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        settings:
          timezone: UTC
        feeds:
          - url: https://a.example.com/rss
           name: misindented
        """,
    )
    message = config_error(path)
    assert "invalid YAML" in message
    assert "line 5" in message


def test_tab_indentation_is_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("settings:\n\ttimezone: UTC\n", encoding="utf-8")
    message = config_error(path)
    assert "invalid YAML" in message and "line 2" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "- https://a.example.com/rss\n"))
    assert "mapping" in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("settings:\n  timezne: UTC\n", "settings.timezne"),
        ("settings:\n  fetch:\n    user_agnet: x\n", "settings.fetch.user_agnet"),
        ("feeds:\n  - url: https://a.example.com/rss\n    nmae: A\n", "feeds.0.nmae"),
        ("setting:\n  timezone: UTC\n", "setting"),
    ],
)
def test_unknown_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    message = config_error(write(tmp_path, text))
    assert f": {key}:" in message
    assert "Extra inputs" in message or "not permitted" in message


@pytest.mark.parametrize("url", ["ftp://example.com/feed.xml", "file:///etc/passwd", "example.com/rss", "http://", "javascript:alert(1)"])
def test_bad_url_scheme(tmp_path: Path, url: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"feeds": [{"url": "https://ok.example.com/rss"}, {"url": url}]}), encoding="utf-8")
    message = config_error(path)
    assert "feeds.1.url" in message
    assert "http://" in message and "https://" in message
    assert url in message


@pytest.mark.parametrize(
    ("text", "key", "bad"),
    [
        ("settings:\n  schedule:\n    default_interval: 15 minutes\n", "settings.schedule.default_interval", "15 minutes"),
        ("settings:\n  fetch:\n    total_deadline: soon\n", "settings.fetch.total_deadline", "soon"),
        ("settings:\n  schedule:\n    max_backoff: 3w\n", "settings.schedule.max_backoff", "3w"),
        ("settings:\n  schedule:\n    min_interval: '-5m'\n", "settings.schedule.min_interval", "-5m"),
        ("feeds:\n  - url: https://a.example.com/rss\n    interval: hourly\n", "feeds.0.interval", "hourly"),
    ],
)
def test_bad_duration(tmp_path: Path, text: str, key: str, bad: str) -> None:
    message = config_error(write(tmp_path, text))
    assert key in message
    assert bad in message
    assert "15m" in message  # says what a duration looks like


def test_boolean_is_not_a_duration(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "settings:\n  schedule:\n    default_interval: yes\n"))
    assert "settings.schedule.default_interval" in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("settings:\n  fetch:\n    total_deadline: -1\n", "settings.fetch.total_deadline"),
        ("settings:\n  fetch:\n    connect_timeout: 0\n", "settings.fetch.connect_timeout"),
        ("feeds:\n  - url: https://a.example.com/rss\n    interval: -60\n", "feeds.0.interval"),
    ],
)
def test_non_positive_numeric_duration_is_rejected(tmp_path: Path, text: str, key: str) -> None:
    """'total_deadline: -1' would make every fetch time out at once; numbers are checked like '-1s' strings."""
    assert key in config_error(write(tmp_path, text))


def test_unknown_timezone(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "settings:\n  timezone: Mars/Olympus_Mons\n"))
    assert "settings.timezone" in message
    assert "Mars/Olympus_Mons" in message
    assert "IANA" in message


def test_out_of_range_value_names_the_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "settings:\n  schedule:\n    jitter: 0.9\n"))
    assert "settings.schedule.jitter" in message


def test_duplicate_feed_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        feeds:
          - url: https://a.example.com/rss
          - url: https://b.example.com/rss
          - url: https://a.example.com/rss
            name: again
        """,
    )
    message = config_error(path)
    assert "feeds" in message
    assert re.search(r"duplicate|twice|more than once", message)
    assert "https://a.example.com/rss" in message


def test_duplicate_feed_url_in_another_spelling(tmp_path: Path) -> None:
    """One feed spelled with another host case or an explicit default port is still one feed."""
    path = write(
        tmp_path,
        """\
        feeds:
          - url: https://news.example.com/rss
          - url: https://News.Example.com:443/rss
        """,
    )
    message = config_error(path)
    assert re.search(r"duplicate|twice|more than once", message)
    assert "feeds" in message


def test_several_mistakes_report_the_first_and_a_count(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "settings:\n  timezne: UTC\n  fetch:\n    max_redirect: 3\n"))
    assert "more)" in message


def test_make_config_fixture_keeps_storage_in_tmp(make_config, tmp_path: Path) -> None:
    config = make_config([{"url": "http://127.0.0.1:9/feed"}], timezone="Europe/Berlin")
    assert config.storage_dir == tmp_path.resolve()
    assert config.settings.allow_hosts == ("127.0.0.1",)
    assert config.feeds[0].url == "http://127.0.0.1:9/feed"


# -- the shipped config --------------------------------------------------------------------


def _shipped() -> Path:
    if not SHIPPED.exists():
        pytest.skip("config/feeds.yaml is not written yet")
    return SHIPPED


def test_shipped_config_loads() -> None:
    config = load_config(_shipped())
    assert config.feeds, "the shipped config lists no feeds"
    assert all(f.url.startswith(("http://", "https://")) for f in config.feeds)
    assert config.storage_dir.is_absolute()


def test_shipped_config_spells_out_every_default() -> None:
    """config.py's docstring: the shipped file spells each default out."""
    raw = yaml.safe_load(_shipped().read_text(encoding="utf-8"))
    settings = raw.get("settings") or {}
    missing = []
    for section, model in [
        ("fetch", cfg.FetchSettings),
        ("schedule", cfg.ScheduleSettings),
        ("extract", cfg.ExtractSettings),
        ("dedup", cfg.DedupSettings),
        ("digest", cfg.DigestSettings),
    ]:
        present = settings.get(section) or {}
        missing += [f"settings.{section}.{name}" for name in model.model_fields if name not in present]
    assert not missing, f"shipped config does not spell out: {missing}"


# -- mistakes YAML or pydantic would otherwise read silently (found by a QA pass) -------------------


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('feeds:\n  - url: "http://127.0.0.1:99999/feed.xml"\n', "feeds.0.url", "invalid port"),
        ("settings:\n  digest: {time: 7:00}\n", "settings.digest.time", "in quotes"),  # YAML: 7:00 is 420 (base 60)
        ("settings:\n  fetch: {max_redirects: yes}\n", "settings.fetch.max_redirects", "integer"),  # YAML: yes is True
        ("settings:\n  schedule: {min_interval: 2h, max_interval: 1m}\n", "settings.schedule", "longer than max_interval"),
        ("feeds:\n  - url: https://a.example.com/rss\n    interval: 100000000000000000000d\n", "feeds.0.interval", "at most 366d"),
        ('settings:\n  database_url: "nosuch://x"\n', "settings.database_url", "SQLAlchemy can open"),
        ('settings:\n  allow_hosts: ["127.0.0.1:8080"]\n', "settings.allow_hosts", "not a host name, an address or a network"),
    ],
)
def test_values_yaml_would_misread_are_refused(tmp_path: Path, text: str, key: str, says: str) -> None:
    message = config_error(write(tmp_path, text))
    assert f": {key}:" in message and says in message, message


def test_a_key_given_twice_is_refused_not_silently_overridden(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "settings:\n  timezone: UTC\n  timezone: Europe/Paris\n"))
    assert "line 3" in message and "'timezone' is given twice" in message


def test_an_unpadded_quoted_digest_time_is_read_as_hours(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, 'settings:\n  digest: {time: "7:30"}\n')).settings.digest.time.strftime("%H:%M") == "07:30"
