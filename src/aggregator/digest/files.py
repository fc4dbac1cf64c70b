"""The digest directory on disk: each day's ``YYYY-MM-DD.md`` and ``.html``, the neighbouring days'
links rewritten when a day is added between them, and ``index.html`` listing every day (its story
counts read from the day pages' first bytes). Every file is replaced atomically."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from ..errors import StorageError
from ..models import Story
from .render import INDEX_NAME, IndexDay, day_nav, render_digest, render_index

ATOM_FILE, JSON_FILE = "stories.atom", "stories.json"  # the story feeds beside the digests (storyfeeds.py), linked from the index
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.html$")
_NAV = re.compile(r'<nav class="days">.*?</nav>', re.DOTALL)  # only our own markup: feed text is escaped
_STORY_COUNT = re.compile(rb'<html lang="en" data-stories="(\d+)"')


@dataclass(frozen=True)
class DigestFiles:
    """What a digest write produced: the day's files and story count, the index, the story feeds."""

    markdown: Path
    html: Path
    stories: int
    index: Path | None = None
    atom: Path | None = None
    json: Path | None = None


def digest_days(directory: Path) -> list[date]:
    """The days that have an HTML digest in ``directory``, oldest first."""
    found = []
    try:
        names = [p.name for p in directory.iterdir()]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    for name in names:
        if m := _DAY_FILE.match(name):
            try:
                found.append(date.fromisoformat(m[1]))
            except ValueError:  # 2024-02-30.html: not ours
                continue
    return sorted(found)


def _neighbours(days: list[date], day: date) -> tuple[date | None, date | None]:
    before = [d for d in days if d < day]
    after = [d for d in days if d > day]
    return (before[-1] if before else None), (after[0] if after else None)


def _story_count(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    m = _STORY_COUNT.search(head)
    return int(m[1]) if m else None


def relink(path: Path, prev_day: date | None, next_day: date | None) -> bool:
    """Point an existing day page's links at these neighbours; False if it needed no change (or is
    missing, or from a version without the links)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"{path}: cannot read: {exc}") from None
    nav = str(day_nav(prev_day, next_day))
    relinked = _NAV.sub(lambda _: nav, text)
    if relinked == text:
        return False
    write_atomically(path, relinked)
    return True


def write_index(directory: Path, tz_name: str, generated_at: datetime) -> Path:
    """Rewrite ``index.html`` from the day pages in ``directory`` (their counts read from their first bytes)."""
    days = [IndexDay(d, _story_count(directory / f"{d}.html"), (directory / f"{d}.md").exists()) for d in reversed(digest_days(directory))]
    feeds = {kind: name for kind, name in (("atom", ATOM_FILE), ("json", JSON_FILE)) if (directory / name).exists()}
    path = directory / INDEX_NAME
    write_atomically(path, render_index(days, tz_name, generated_at, **feeds))
    return path


def write_day(directory: Path, day: date, stories: list[Story], tz_name: str, generated_at: datetime) -> DigestFiles:
    """Write a day's ``YYYY-MM-DD.md`` and ``.html`` (linked to the days either side that have
    one), point those neighbours' links at it, and rewrite the index. Each file atomically."""
    days = sorted(set(digest_days(directory)) | {day})
    prev_day, next_day = _neighbours(days, day)
    markdown, html = render_digest(day, stories, tz_name, generated_at, prev_day=prev_day, next_day=next_day)
    md_path, html_path = directory / f"{day.isoformat()}.md", directory / f"{day.isoformat()}.html"
    write_atomically(md_path, markdown)
    write_atomically(html_path, html)
    for neighbour in (prev_day, next_day):
        if neighbour is not None:
            relink(directory / f"{neighbour}.html", *_neighbours(days, neighbour))
    return DigestFiles(md_path, html_path, len(stories), index=write_index(directory, tz_name, generated_at))


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, content: str) -> None:
    """Replace ``path`` with ``content`` so readers see the old file or the new one, never half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StorageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # mkstemp makes the file private (0600); a digest is meant to be read (by a web server,
            # another user): it gets what a plainly created file would (0666 less the umask).
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
