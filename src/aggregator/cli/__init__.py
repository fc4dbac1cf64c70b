"""Command line: ``aggregator run | poll | clusters | story | digest | feeds | opml | eval | demo``.

User mistakes (bad config, unknown story, locked storage) become one line on stderr and a
non-zero exit code, never a traceback. ``app`` (the frame, shared options and helpers),
``reading``, ``polling`` and ``tools`` (the commands by what they do); importing this package
registers every command and loads nothing of the pipeline.
"""

from . import corrections, explain, feeds, polling, reading, tools, web  # noqa: I001 (the cluster's commands register last: listed last)
from . import cluster
from .app import app

__all__ = ["app", "cluster", "corrections", "explain", "feeds", "polling", "reading", "tools", "web"]
