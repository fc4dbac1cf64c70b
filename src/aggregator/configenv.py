"""Settings from the environment: ``AGGREGATOR_<KEY>`` and ``AGGREGATOR_<SECTION>__<KEY>`` variables
read as the config file's keys (``settings_from_env``), and put in place of the file's own before it
is validated (``with_overrides``; ``config.load_config`` does both)."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .errors import ConfigError

ENV_PREFIX = "AGGREGATOR_"
ENV_NOT_SETTINGS = frozenset({"AGGREGATOR_CONFIG", "AGGREGATOR_TOKEN"})  # read elsewhere: the config's path (the CLI), the web app's token


class EnvOverride(NamedTuple):
    """One setting an environment variable gives."""

    variable: str
    keys: tuple[str, ...]  # under ``settings``: ("storage",) or ("fetch", "user_agent")
    value: Any


def settings_from_env(environ: Mapping[str, str]) -> list[EnvOverride]:
    """The settings the environment gives: ``AGGREGATOR_<KEY>`` for a key of ``settings``
    (``AGGREGATOR_STORAGE``, ``AGGREGATOR_DATABASE_URL``, ``AGGREGATOR_TIMEZONE``) and
    ``AGGREGATOR_<SECTION>__<KEY>`` for a key in one of its sections (``AGGREGATOR_FETCH__USER_AGENT``).

    A value is text, read as the key's type reads it: a whole number for an integer, a
    comma-separated list for ``allow_hosts``, a path relative to the working directory (not to the
    file), empty for null where the key may be null; the rest (durations, booleans, times of day,
    names) the model parses as it parses the file's.

    A name that is no setting but looks like one is an error, since ignoring it would silently leave
    the file's value in force: a section's name (``AGGREGATOR_FETCH__AGENT``), a setting's name
    misspelt (``AGGREGATOR_STORGE``), a section's key without its section (``AGGREGATOR_USER_AGENT``),
    ``AGGREGATOR_FEEDS``. Other ``AGGREGATOR_`` names (``AGGREGATOR_TOKEN``, a tool's own) are not ours.
    """
    overrides = []
    for variable in sorted(environ):
        if variable.startswith(ENV_PREFIX) and variable not in ENV_NOT_SETTINGS:
            keys = tuple(variable.removeprefix(ENV_PREFIX).lower().split("__"))
            field = _env_field(variable, keys)
            if field is not None:
                overrides.append(EnvOverride(variable, keys, _env_value(field, environ[variable])))
    return overrides


def with_overrides(raw: Any, overrides: list[EnvOverride]) -> Any:
    """The parsed file with the environment's settings in place of its own (``raw`` is not changed)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("settings") or {}, dict):
        return raw  # a file of the wrong shape: its own error says so
    settings = dict(raw.get("settings") or {})
    for override in overrides:
        *sections, key = override.keys
        table = settings
        for name in sections:
            inner = table.get(name) or {}
            table[name] = table = dict(inner) if isinstance(inner, dict) else {}  # (a section that is no mapping: replaced)
        table[key] = override.value
    return {**raw, "settings": settings}


def _sections() -> dict[str, type[BaseModel]]:
    from .config import Settings  # here, not above: config imports this module to read the environment

    return {name: f.annotation for name, f in Settings.model_fields.items() if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)}


def _env_field(variable: str, keys: tuple[str, ...]) -> FieldInfo | None:
    """The model field that ``keys`` names under ``settings``; None for a name that is not ours; a
    ConfigError naming the variable for one that looks like a setting but is none."""
    from .config import Settings  # here, not above: config imports this module to read the environment

    sections = _sections()
    if len(keys) == 1 and keys[0] in Settings.model_fields and keys[0] not in sections:
        return Settings.model_fields[keys[0]]
    if len(keys) == 2 and keys[0] in sections and keys[1] in sections[keys[0]].model_fields:
        return sections[keys[0]].model_fields[keys[1]]
    if keys == ("feeds",):
        raise ConfigError(f"environment variable {variable}: feeds are listed in the config file only (settings can be set here)")
    if len(keys) == 1 and keys[0] in sections:
        example = next(iter(sections[keys[0]].model_fields)).upper()
        raise ConfigError(f"environment variable {variable}: settings.{keys[0]} is a section: set one of its keys, e.g. {variable}__{example}")
    known = {name: name for name in Settings.model_fields if name not in sections}
    for name, model in sections.items():
        known.update({f"{name}__{key}": f"{name}__{key}" for key in model.model_fields})
        known.update({key: f"{name}__{key}" for key in model.model_fields if key not in known})  # a key without its section
    close = difflib.get_close_matches("__".join(keys), known, n=1, cutoff=0.75)
    if close:
        raise ConfigError(f"environment variable {variable}: no such setting (did you mean {ENV_PREFIX}{known[close[0]].upper()}?)")
    if keys[0] in sections:
        raise ConfigError(f"environment variable {variable}: settings.{keys[0]} has no key {'__'.join(keys[1:])!r} "
                          f"(its keys: {', '.join(sections[keys[0]].model_fields)})")
    return None


def _env_value(field: FieldInfo, text: str) -> Any:
    """A variable's text as the value the file would give ``field``."""
    annotation = field.annotation
    types = typing.get_args(annotation) or (annotation,)
    if text == "" and type(None) in types:
        return None
    if annotation is int and re.fullmatch(r"\s*[+-]?\d+\s*", text):  # our integers are strict: the file gives them as numbers
        return int(text)
    if typing.get_origin(annotation) is tuple:
        return [part.strip() for part in text.split(",") if part.strip()]
    if Path in types:
        return Path.cwd() / text  # (an absolute path stays itself)
    return text
