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
from helpers import cli

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


@pytest.mark.sqlite_only  # the SQLite file under the storage directory
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


# -- environment variables (for containers and units): over the file's settings ------------------


def env_config(path: Path, **variables: str) -> cfg.Config:
    return load_config(path, environ=variables)


def env_error(path: Path, **variables: str) -> str:
    with pytest.raises(ConfigError) as info:
        env_config(path, **variables)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, """\
        settings:
          storage: from-file
          timezone: Europe/Paris
          fetch: {user_agent: file-agent, max_concurrency: 8}
          digest: {time: "06:00"}
        feeds:
          - url: https://news.example.com/rss
        """)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = env_config(
        path,
        AGGREGATOR_STORAGE="relative/store",  # relative to the working directory, as a path on a command line
        AGGREGATOR_DATABASE_URL="postgresql+psycopg://news@db.internal/news",
        AGGREGATOR_TIMEZONE="America/New_York",
        AGGREGATOR_FETCH__MAX_CONCURRENCY="4",
        AGGREGATOR_FETCH__CONNECT_TIMEOUT="3s",
        AGGREGATOR_SCHEDULE__JITTER="0.2",
        AGGREGATOR_EXTRACT__FETCH_PAGES="false",
        AGGREGATOR_DIGEST__TIME="7:30",
        AGGREGATOR_ALLOW_HOSTS="10.1.0.0/16, feeds.internal",
        AGGREGATOR_CONFIG="/elsewhere/feeds.yaml",  # the CLI's, not a setting
        AGGREGATOR_TOKEN="secret",  # the web app's, not a setting
        PATH="/usr/bin",
    )
    s = config.settings
    assert s.storage == elsewhere / "relative" / "store"
    assert config.database_url == "postgresql+psycopg://news@db.internal/news"
    assert s.timezone == "America/New_York"
    assert (s.fetch.max_concurrency, s.fetch.connect_timeout, s.fetch.user_agent) == (4, 3, "file-agent")  # the rest of the section stays
    assert s.schedule.jitter == pytest.approx(0.2)
    assert s.extract.fetch_pages is False
    assert s.digest.time.strftime("%H:%M") == "07:30"
    assert s.allow_hosts == ("10.1.0.0/16", "feeds.internal")
    assert [f.url for f in config.feeds] == ["https://news.example.com/rss"]
    assert config.path == path


def test_environment_is_read_from_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "settings:\n  timezone: UTC\n")
    monkeypatch.setenv("AGGREGATOR_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setenv("AGGREGATOR_STORAGE", str(tmp_path / "state"))
    config = load_config(path)
    assert config.settings.timezone == "Asia/Tokyo" and config.storage_dir == tmp_path / "state"
    assert load_config(path, environ={}).settings.timezone == "UTC"


def test_an_empty_value_is_null_where_the_file_may_say_null(tmp_path: Path) -> None:
    path = write(tmp_path, 'settings:\n  database_url: "sqlite:///x.db"\n  allow_hosts: [a.example]\n')
    config = env_config(path, AGGREGATOR_DATABASE_URL="", AGGREGATOR_ALLOW_HOSTS="")
    assert config.settings.database_url is None and config.settings.allow_hosts == ()


def test_environment_over_a_file_without_settings(tmp_path: Path) -> None:
    for text in ("", "feeds: []\n", "settings:\n", "settings:\n  fetch:\n"):
        config = env_config(write(tmp_path, text), AGGREGATOR_FETCH__USER_AGENT="agent/2", AGGREGATOR_STORAGE=str(tmp_path))
        assert config.settings.fetch.user_agent == "agent/2" and config.storage_dir == tmp_path


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"AGGREGATOR_FETCH__MAX_CONCURRENCY": "0"}, "environment variable AGGREGATOR_FETCH__MAX_CONCURRENCY: settings.fetch.max_concurrency: Input should be greater than or equal to 1"),
        ({"AGGREGATOR_FETCH__MAX_CONCURRENCY": "many"}, "environment variable AGGREGATOR_FETCH__MAX_CONCURRENCY: settings.fetch.max_concurrency: Input should be a valid integer"),
        ({"AGGREGATOR_TIMEZONE": "Mars/Olympus"}, "environment variable AGGREGATOR_TIMEZONE: settings.timezone: Value error, unknown time zone 'Mars/Olympus'"),
        ({"AGGREGATOR_DATABASE_URL": "nosuch://x"}, "environment variable AGGREGATOR_DATABASE_URL: settings.database_url: Value error, not a database URL"),
        ({"AGGREGATOR_SCHEDULE__DEFAULT_INTERVAL": "soon"}, "environment variable AGGREGATOR_SCHEDULE__DEFAULT_INTERVAL: settings.schedule.default_interval: Value error, expected a duration"),
        ({"AGGREGATOR_EXTRACT__FETCH_PAGES": "perhaps"}, "environment variable AGGREGATOR_EXTRACT__FETCH_PAGES: settings.extract.fetch_pages: Input should be a valid boolean"),
        ({"AGGREGATOR_ALLOW_HOSTS": "127.0.0.1:8080"}, "environment variable AGGREGATOR_ALLOW_HOSTS: settings.allow_hosts: Value error"),
        ({"AGGREGATOR_FETCH__CA_BUNDLE": "/no/such/ca.pem"}, "environment variable AGGREGATOR_FETCH__CA_BUNDLE: settings.fetch.ca_bundle: /no/such/ca.pem is not a file"),
        # a cross-key rule broken by a variable: the file and the variable are both named
        ({"AGGREGATOR_SCHEDULE__MIN_INTERVAL": "2d"}, "<file> with environment variable AGGREGATOR_SCHEDULE__MIN_INTERVAL: settings.schedule: Value error, min_interval"),
        # names that look like a setting but are none: refused, not ignored (the file's value would stay in force unseen)
        ({"AGGREGATOR_STORGE": "/x"}, "environment variable AGGREGATOR_STORGE: no such setting (did you mean AGGREGATOR_STORAGE?)"),
        ({"AGGREGATOR_FETCH__AGENT": "x"}, "environment variable AGGREGATOR_FETCH__AGENT: no such setting (did you mean AGGREGATOR_FETCH__USER_AGENT?)"),
        ({"AGGREGATOR_USER_AGENT": "x"}, "environment variable AGGREGATOR_USER_AGENT: no such setting (did you mean AGGREGATOR_FETCH__USER_AGENT?)"),
        ({"AGGREGATOR_DIGEST_TIME": "08:00"}, "environment variable AGGREGATOR_DIGEST_TIME: no such setting (did you mean AGGREGATOR_DIGEST__TIME?)"),
        ({"AGGREGATOR_FETCH__PROXY": "x"}, "environment variable AGGREGATOR_FETCH__PROXY: settings.fetch has no key 'proxy' (its keys: user_agent,"),
        ({"AGGREGATOR_FETCH": "x"}, "environment variable AGGREGATOR_FETCH: settings.fetch is a section: set one of its keys, e.g. AGGREGATOR_FETCH__USER_AGENT"),
        ({"AGGREGATOR_FEEDS": "https://a.example/rss"}, "environment variable AGGREGATOR_FEEDS: feeds are listed in the config file only"),
    ],
)
def test_bad_environment_values_name_the_variable(tmp_path: Path, variables: dict[str, str], says: str) -> None:
    path = write(tmp_path, "settings:\n  timezone: UTC\n")
    message = env_error(path, **variables).replace(str(path), "<file>")
    assert message.startswith(says), message


def test_other_aggregator_variables_are_left_alone(tmp_path: Path) -> None:
    """Names far from any setting belong to other tools (the web app's token, a test run's artifacts folder)."""
    path = write(tmp_path, "settings:\n  timezone: UTC\n")
    others = {"AGGREGATOR_TOKEN": "t" * 32, "AGGREGATOR_CONFIG": str(path), "AGGREGATOR_TEST_ARTIFACTS": "/tmp/a", "AGGREGATOR_HOST": "0.0.0.0",
              "AGGREGATOR_PORT": "8080", "AGGREGATOR_LOG_LEVEL": "debug"}
    assert cfg.settings_from_env(others) == []
    assert env_config(path, **others).settings.timezone == "UTC"


def test_a_mistake_in_the_file_still_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "settings:\n  fetch: {max_redirects: -1}\n")
    message = env_error(path, AGGREGATOR_FETCH__USER_AGENT="agent/2")
    assert message.startswith(f"{path}: settings.fetch.max_redirects:"), message


def test_every_setting_has_a_variable(tmp_path: Path) -> None:
    """The rule covers every key of the shipped config's `settings`: each one's variable is accepted."""
    settings = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))["settings"]
    names = [k.upper() for k, v in settings.items() if not isinstance(v, dict)]
    names += [f"{k.upper()}__{key.upper()}" for k, v in settings.items() if isinstance(v, dict) for key in v]
    assert {o.variable for o in cfg.settings_from_env({f"AGGREGATOR_{n}": "" for n in names})} == {f"AGGREGATOR_{n}" for n in names}


def test_the_cli_reads_its_config_path_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "settings:\n  storage: from-file\nfeeds:\n  - url: https://news.example.com/rss\n")
    state = tmp_path / "state"
    state.mkdir()
    shown = cli("feeds", env={"AGGREGATOR_CONFIG": str(path), "AGGREGATOR_STORAGE": str(state)})
    assert shown.returncode == 1 and f"{state / 'aggregator.db'}: no database here yet" in shown.stderr, shown.stderr
    missing = cli("feeds", env={"AGGREGATOR_CONFIG": str(tmp_path / "nope.yaml")})
    assert missing.returncode == 2 and "nope.yaml: config file not found" in missing.stderr and "AGGREGATOR_CONFIG" in missing.stderr
    typo = cli("feeds", env={"AGGREGATOR_CONFIG": str(path), "AGGREGATOR_TIMEZON": "UTC"})
    assert typo.returncode == 2 and "AGGREGATOR_TIMEZON: no such setting (did you mean AGGREGATOR_TIMEZONE?)" in typo.stderr
