"""aggregator: follow many news feeds, get one list of stories.

The public API is this module's ``__all__``; everything else is private to the package.
"""

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
from .models import Article, Entry, FeedState, Story, Variant

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
    "ParseError",
    "SchemaMismatch",
    "StorageError",
    "Story",
    "Variant",
    "load_config",
]
__version__ = "0.1.0"
