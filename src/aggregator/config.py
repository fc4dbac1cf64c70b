"""Settings and feed list, loaded from one YAML file and validated once.

Defaults are the named constants below; the shipped ``config/feeds.yaml``
spells each of them out. Relative paths in the file are resolved against the
file's own directory, so a config works from any working directory. The environment's settings
(``AGGREGATOR_...`` variables over the file's) are read in ``configenv``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from .configenv import settings_from_env, with_overrides
from .defaults import (  # noqa: F401  (re-exported: the defaults are part of the config)
    CONNECT_TIMEOUT_S,
    DEFAULT_CONFIG_PATH,
    DEFAULT_INTERVAL_S,
    DEFAULT_JITTER,
    MAX_BACKOFF_S,
    MAX_BODY_BYTES,
    MAX_CONCURRENCY,
    MAX_DURATION_S,
    MAX_INTERVAL_S,
    MAX_REDIRECTS,
    MIN_FEED_TEXT_CHARS,
    MIN_INTERVAL_S,
    PER_HOST_CONCURRENCY,
    READ_TIMEOUT_S,
    TOTAL_DEADLINE_S,
    USER_AGENT,
    WINDOW_HOURS,
)
from .errors import ConfigError
from .urls import normalize_url, parse_allow_list, port_problem

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m, got a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 90s, 15m, 2h or 1d, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"a duration must be positive and finite, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration must be at most 366d, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchSettings(_Strict):
    user_agent: str = USER_AGENT
    connect_timeout: Duration = CONNECT_TIMEOUT_S
    read_timeout: Duration = READ_TIMEOUT_S
    total_deadline: Duration = TOTAL_DEADLINE_S
    max_body_bytes: int = Field(MAX_BODY_BYTES, gt=0, strict=True)
    per_host_concurrency: int = Field(PER_HOST_CONCURRENCY, ge=1, strict=True)
    max_concurrency: int = Field(MAX_CONCURRENCY, ge=1, strict=True)
    max_redirects: int = Field(MAX_REDIRECTS, ge=0, strict=True)
    ca_bundle: Path | None = None  # a PEM file of extra certificate authorities to trust (a private CA); system ones stay trusted


class ScheduleSettings(_Strict):
    default_interval: Duration = DEFAULT_INTERVAL_S
    min_interval: Duration = MIN_INTERVAL_S
    max_interval: Duration = MAX_INTERVAL_S
    jitter: float = Field(DEFAULT_JITTER, ge=0, le=0.5)
    max_backoff: Duration = MAX_BACKOFF_S

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleSettings:
        if self.min_interval > self.max_interval:
            raise ValueError(f"min_interval ({self.min_interval:g}s) is longer than max_interval ({self.max_interval:g}s)")
        return self


class ExtractSettings(_Strict):
    fetch_pages: bool = True
    min_feed_text_chars: int = Field(MIN_FEED_TEXT_CHARS, ge=0, strict=True)
    workers: int = Field(0, ge=0, le=64, strict=True)  # extraction processes; 0 = one per CPU core, 1 = in-process threads
    fast: bool = True  # trafilatura without its fallback extractors: ~28% faster, same words on 95% of pages


class DedupSettings(_Strict):
    window_hours: float = Field(WINDOW_HOURS, gt=0)
    decay_per_day: float = Field(0.04, ge=0, le=1)  # the least: up to 6x when the stream's stories last hours (see Deduplicator._learn_gap)
    report_threshold: float = Field(0.22, gt=0, le=2)
    copy_jaccard: float = Field(0.5, gt=0, le=1)
    copy_containment: float = Field(0.7, gt=0, le=1)
    num_perm: int = Field(64, ge=16, le=512, strict=True)
    seed: int = Field(1, strict=True)
    shingle_size: int = Field(3, ge=1, le=8, strict=True)


class ClusterSettings(_Strict):
    """Workers and the clusterer on PostgreSQL (``aggregator worker``, ``aggregator clusterer``)."""

    worker_concurrency: int = Field(20, ge=1, le=1000, strict=True)  # feeds a worker polls at once
    heartbeat: Duration = 5.0  # how often a worker says it is alive
    stalled_after: Duration = 20.0  # a worker silent this long is taken for dead: its feeds go to the others

    @model_validator(mode="after")
    def _heartbeats_fit(self) -> ClusterSettings:
        if self.stalled_after < 2 * self.heartbeat:
            raise ValueError(f"stalled_after ({self.stalled_after:g}s) must be at least twice the heartbeat ({self.heartbeat:g}s)")
        return self


def _clock_time(value: Any) -> Any:
    """A time of day written as text; YAML reads an unquoted 7:00 as the number 420 (base 60)."""
    if isinstance(value, (int, float)):
        raise ValueError("write the time of day in quotes, e.g. time: \"07:00\" (unquoted, YAML reads 7:00 as a number)")
    if isinstance(value, str) and re.fullmatch(r"\d:\d\d(:\d\d)?", value.strip()):
        return "0" + value.strip()
    return value


class DigestSettings(_Strict):
    time: Annotated[dt.time, BeforeValidator(_clock_time)] = dt.time(7, 0)
    max_stories: int = Field(50, ge=1, strict=True)
    feed_max_stories: int = Field(100, ge=1, strict=True)  # stories in stories.atom/.json: the most recently updated of the last 48 hours


class FeedConfig(_Strict):
    url: str
    name: str | None = None
    interval: Duration | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError(f"feed url must start with http:// or https://, got {url!r}")
        problem = port_problem(url)
        if problem:
            raise ValueError(f"feed url has an {problem}, got {url!r}")
        return url


class Settings(_Strict):
    storage: Path = Path("../storage")
    database_url: str | None = None
    timezone: str = "UTC"
    fetch: FetchSettings = FetchSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    extract: ExtractSettings = ExtractSettings()
    dedup: DedupSettings = DedupSettings()
    digest: DigestSettings = DigestSettings()
    cluster: ClusterSettings = ClusterSettings()
    allow_hosts: tuple[str, ...] = ()

    @field_validator("allow_hosts")
    @classmethod
    def _allow_forms(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        parse_allow_list(entries)  # ValueError names the entry
        return entries

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str | None) -> str | None:
        if url is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            make_url(url).get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ValueError(f"not a database URL SQLAlchemy can open ({exc})") from None
        return url

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)") from None
        return name


class Config(_Strict):
    settings: Settings = Settings()
    feeds: tuple[FeedConfig, ...] = ()
    path: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def storage_dir(self) -> Path:
        return self.settings.storage

    @property
    def database_url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        return f"sqlite:///{self.storage_dir / 'aggregator.db'}"

    @property
    def lock_dir(self) -> Path:
        """Where the one-writer lock lives: beside the SQLite database (two configs sharing one
        database share its lock); the storage directory for other databases (one machine only)."""
        url = self.database_url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url.removeprefix("sqlite:///")).parent
        return self.storage_dir

    @property
    def digest_dir(self) -> Path:
        return self.storage_dir / "digests"


# libyaml's parser when PyYAML was built with it (the common case): ten times faster on a config of
# hundreds of feeds, which every command reads; the same safe constructor and resolver either way.
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path | str = DEFAULT_CONFIG_PATH, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file, with the settings the environment overrides over the
    file's (``os.environ`` unless ``environ`` is given, ``{}`` for none: see ``settings_from_env``);
    raise ConfigError naming the file and key, or the environment variable."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (pass --config PATH or set AGGREGATOR_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', exc)}") from None
    raw = raw or {}
    overrides = settings_from_env(os.environ if environ is None else environ)
    if not overrides:
        return config_from_dict(raw, path)
    return config_from_dict(with_overrides(raw, overrides), path, {"settings." + ".".join(o.keys): o.variable for o in overrides})


def config_from_dict(raw: Any, path: Path, origins: Mapping[str, str] | None = None) -> Config:
    """Validate an already-parsed mapping as if it came from ``path``; ``origins`` names the
    environment variable that gave each overridden key (``settings.fetch.user_agent``), for the errors."""
    given = origins or {}

    def source(key: str) -> str:
        """Who gave ``key``: its variable; for a section, the file and the variables setting its keys."""
        if key in given:
            return f"environment variable {given[key]}"
        within = sorted(variable for k, variable in given.items() if k.startswith(key + "."))
        return f"{path} with environment variable{'s' * (len(within) > 1)} {', '.join(within)}" if within else str(path)

    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'settings' and 'feeds'")
    try:
        config = Config.model_validate({**raw, "path": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = "Input should be a list" if first["type"] in ("tuple_type", "list_type") else first["msg"]  # our tuples are YAML lists
        raise ConfigError(f"{source(key)}: {key}: {message}{more}") from None
    seen: dict[str, str] = {}
    for feed in config.feeds:
        key = normalize_url(feed.url)
        if key in seen:
            raise ConfigError(f"{path}: feeds: {feed.url} is listed twice (also as {seen[key]})")
        seen[key] = feed.url
    settings = config.settings
    fetch = settings.fetch
    if fetch.ca_bundle is not None:
        bundle = fetch.ca_bundle if fetch.ca_bundle.is_absolute() else (path.parent / fetch.ca_bundle).resolve()
        if not bundle.is_file():
            raise ConfigError(f"{source('settings.fetch.ca_bundle')}: settings.fetch.ca_bundle: {bundle} is not a file")
        try:
            ssl.create_default_context(cafile=str(bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{source('settings.fetch.ca_bundle')}: settings.fetch.ca_bundle: {bundle} is not a PEM certificate bundle ({exc})") from None
        fetch = fetch.model_copy(update={"ca_bundle": bundle})
    storage = settings.storage if settings.storage.is_absolute() else (path.parent / settings.storage).resolve()
    return config.model_copy(update={"settings": settings.model_copy(update={"storage": storage, "fetch": fetch})})


def feeds_from_opml(path: Path) -> tuple[list[FeedConfig], list[str]]:
    """The feeds listed in an OPML subscription file (parsed with defusedxml: no entity tricks), and
    why each subscription that cannot be polled (not http or https, a bad port) is left out.
    ``feed://`` addresses and upper-case schemes (``HTTP://``) are read as the http(s) they mean;
    an outline whose only text is its address (``feeds export`` of an unnamed feed) has no name."""
    from defusedxml import ElementTree as SafeET
    from defusedxml.common import DefusedXmlException

    from .discover import subscription_url

    try:
        root = SafeET.parse(path).getroot()
    except FileNotFoundError:
        raise ConfigError(f"{path}: OPML file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except DefusedXmlException as exc:
        raise ConfigError(f"{path}: refused: {exc.__class__.__name__} (entities or DTDs are not allowed in OPML)") from None
    except SafeET.ParseError as exc:
        raise ConfigError(f"{path}: not valid OPML/XML: {exc}") from None
    feeds: dict[str, FeedConfig] = {}
    refused: list[str] = []
    for outline in root.iter("outline"):
        given = (outline.get("xmlUrl") or "").strip()
        if not given:
            continue
        url = subscription_url(given)
        name = (outline.get("title") or outline.get("text") or "").strip() or None
        if name in (given, url):
            name = None
        try:
            feeds.setdefault(normalize_url(url), FeedConfig(url=url, name=name))
        except ValidationError as exc:
            refused.append(exc.errors()[0]["msg"].removeprefix("Value error, "))
    return list(feeds.values()), refused
