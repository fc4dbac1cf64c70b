"""The public Python API is ``aggregator.__all__``, and starting the command line loads only what
the command needs (each check in a fresh interpreter: what is imported is the point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aggregator
from helpers import write_config

PUBLIC = [
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
# The pipeline's heavy parts: none of them may load for `--help` or for a command that only reads.
PIPELINE = ("numpy", "httpx", "feedparser", "trafilatura", "datasketch", "scipy", "apscheduler", "lxml", "aggregator.dedup", "aggregator.core")


def test_the_public_api_is_pinned() -> None:
    assert aggregator.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(aggregator, name) is not None
    assert aggregator.make_aggregator.__module__ == "aggregator.factory"


def modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_import_aggregator_and_help_load_nothing_of_the_pipeline() -> None:
    assert loaded(modules_after("import aggregator"), (*PIPELINE, "sqlalchemy", "pydantic", "rich")) == []
    help_run = "from aggregator.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    assert loaded(modules_after(help_run), (*PIPELINE, "sqlalchemy", "pydantic", "rich", "asyncio")) == []


def test_listing_stories_loads_the_store_but_not_the_pipeline(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"url": "http://127.0.0.1:9/feed.xml", "name": "Gazette"}])
    listing = f"from aggregator.cli import app\ntry:\n    app(['clusters', '--json', '--config', {str(config)!r}])\nexcept SystemExit:\n    pass"
    modules = modules_after(listing)
    assert "sqlalchemy" in modules  # it did read the database
    assert loaded(modules, PIPELINE) == []
