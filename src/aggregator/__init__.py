"""aggregator: follow many news feeds, get one list of stories.

The public API is this module's ``__all__`` (pinned by tests/test_public_api.py); every other
module is internal to the package. Names are imported on first use, so ``import aggregator``
(and the command line's start) does not load the pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_WHERE = {
    "Aggregator": "core",
    "AggregatorError": "errors",
    "Article": "models",
    "Config": "config",
    "ConfigError": "errors",
    "DaemonLocked": "errors",
    "Entry": "models",
    "EvalError": "errors",
    "FeedError": "errors",
    "FeedState": "models",
    "FetchError": "errors",
    "Library": "library",
    "ParseError": "errors",
    "SchemaMismatch": "errors",
    "StorageError": "errors",
    "Story": "models",
    "Variant": "models",
    "load_config": "config",
    "make_aggregator": "factory",
    "open_library": "factory",
    "writer": "factory",
}

__all__ = [
    "Aggregator",
    "AggregatorError",
    "Article",
    "Config",
    "ConfigError",
    "DaemonLocked",
    "Entry",
    "EvalError",
    "FeedError",
    "FeedState",
    "FetchError",
    "Library",
    "ParseError",
    "SchemaMismatch",
    "StorageError",
    "Story",
    "Variant",
    "load_config",
    "make_aggregator",
    "open_library",
    "writer",
]

if TYPE_CHECKING:
    from .config import Config, load_config
    from .core import Aggregator
    from .errors import (
        AggregatorError,
        ConfigError,
        DaemonLocked,
        EvalError,
        FeedError,
        FetchError,
        ParseError,
        SchemaMismatch,
        StorageError,
    )
    from .factory import make_aggregator, open_library, writer
    from .library import Library
    from .models import Article, Entry, FeedState, Story, Variant


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'aggregator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
