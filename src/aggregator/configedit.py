"""Editing the config file's ``feeds:`` list in place, for ``aggregator feeds add`` and ``remove``
(and the list written out as OPML, for ``feeds export``).

The file stays the declarative source people version: an edit appends or removes one entry's
lines and keeps every other byte (comments, key order, blank lines, quoting, indentation, the
other entries). ruamel.yaml's round-trip composer says where things are (the ``feeds`` key, each
entry and its values, as character offsets); the edit is a splice of those lines. (Dumping the
round-trip document instead would re-indent every list of the file to one style and write
``null`` values as empty ones.)

Every edit is validated by loading the new file with ``load_config`` before it replaces the old
one, atomically (a temporary file beside it, then ``os.replace``): readers, and a daemon watching
the file, see the old config or the new one, never half, and never one that does not load. Edits
of one file take turns (an exclusive ``flock`` on it), so two ``feeds add`` at once both land.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, FeedConfig, load_config
from .errors import AggregatorError, ConfigError
from .urls import normalize_url

if TYPE_CHECKING:
    from ruamel.yaml.nodes import MappingNode, Node

_PLAIN = re.compile(r"[A-Za-z0-9_./][^\x00-\x1f\x7f\x85\u2028\u2029]*")  # may be written unquoted (then checked by reading it back)
_BLANK_OR_COMMENT = re.compile(r"\s*(#.*)?")


@dataclass(frozen=True)
class NewFeed:
    """An entry to write: the values as they go into the file (``interval`` as written, e.g. ``30m``)."""

    url: str
    name: str | None = None
    interval: str | None = None


def add_feed(path: Path, feed: NewFeed) -> Config:
    """Append ``feed`` to the config's ``feeds:`` list (creating the list if there is none); returns
    the new config. AggregatorError when the config lists the feed already (after normalising its
    address); ConfigError when the file does not load, or would not after the edit."""

    def change(text: str, config: Config) -> str:
        wanted = normalize_url(feed.url)
        for listed in config.feeds:
            if normalize_url(listed.url) == wanted:
                same = "" if listed.url == feed.url else f" (as {listed.url})"
                raise AggregatorError(f"{feed.url}: already in {path}{same}")
        return _appended(text, feed)

    def check(config: Config) -> bool:
        return any(f.url == feed.url and f.name == feed.name for f in config.feeds)

    return _edit(path, change, check)


def remove_feed(path: Path, url: str) -> tuple[FeedConfig, Config] | None:
    """Remove the entry whose address is ``url`` (compared normalised) from ``feeds:``; returns it
    and the new config, or None when no entry has that address. Comment lines above the entry
    stay (they may describe a group of feeds); the entry's own lines go, with their comments."""
    removed: list[FeedConfig] = []

    def change(text: str, config: Config) -> str:
        wanted = normalize_url(url)
        for index, listed in enumerate(config.feeds):
            if normalize_url(listed.url) == wanted:
                removed.append(listed)
                return _without(text, index)
        raise _NotListed

    def check(config: Config) -> bool:
        return all(normalize_url(f.url) != normalize_url(url) for f in config.feeds)

    try:
        config = _edit(path, change, check)
    except _NotListed:
        return None
    return removed[0], config


class _NotListed(Exception):
    pass


# -- the file: read under a lock, write validated and atomically ------------------------------


def _edit(path: Path, change: Callable[[str, Config], str], check: Callable[[Config], bool]) -> Config:
    target = path.resolve()  # a symlinked config: the file it points to is replaced, the link stays
    with _turn(path, target):
        current = load_config(path)  # a file that does not load now is not edited
        try:
            with target.open(encoding="utf-8", newline="") as fh:  # its line breaks as they are (CRLF stays CRLF)
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        return _replace(path, target, change(text, current), check)


@contextmanager
def _turn(path: Path, target: Path) -> Iterator[None]:
    """An exclusive lock on the config file for one edit. The file a waiter locked may have been
    replaced by the edit it waited for: then it locks the new file."""
    import fcntl

    while True:
        try:
            fd = os.open(target, os.O_RDONLY)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found (pass --config PATH)") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.fstat(fd), os.stat(target))
            except FileNotFoundError:
                current = False
            if current:
                yield
                return
        finally:
            os.close(fd)  # and with it the lock


def _replace(path: Path, target: Path, text: str, check: Callable[[Config], bool]) -> Config:
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write beside it: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            os.fchmod(fh.fileno(), mode)  # the config's own permissions, not mkstemp's 0600
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:  # in the same directory: relative paths in it resolve as they will once it replaces the config
            config = load_config(tmp)
        except ConfigError as exc:
            raise ConfigError(f"{path}: not changed: the edit would not load: {str(exc).replace(str(tmp), str(path))}") from None
        if not check(config):
            raise ConfigError(f"{path}: not changed: the edit does not read back as written (anchors or merge keys in `feeds:`?)")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(target.parent)
    return config.model_copy(update={"path": path})


def _sync_directory(directory: Path) -> None:
    """The rename itself made durable (a crash right after still finds the new file)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the splice ---------------------------------------------------------------------------------


class _Text:
    """The file's text with line arithmetic on character offsets (the composer's marks)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"

    def line_start(self, index: int) -> int:
        return self.text.rfind("\n", 0, index) + 1

    def line_end(self, index: int) -> int:
        """Just past the line break of the line holding ``index`` (the end of the text on the last line)."""
        found = self.text.find("\n", index)
        return len(self.text) if found < 0 else found + 1

    def column(self, index: int) -> int:
        return index - self.line_start(index)

    def line(self, start: int) -> str:
        return self.text[start : self.line_end(start)]

    def insert(self, at: int, lines: str) -> str:
        if at > 0 and self.text[at - 1] != "\n":  # the file's last line has no line break
            lines = self.newline + lines
        return self.text[:at] + lines + self.text[at:]


def _compose(text: str) -> MappingNode | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.nodes import MappingNode

    try:
        root = YAML(typ="rt").compose(text)
    except YAMLError as exc:  # load_config read it; ruamel (YAML 1.2) may still disagree on some corner
        raise ConfigError(f"cannot edit this file: {exc}") from None
    if root is None:
        return None
    if not isinstance(root, MappingNode) or root.flow_style:
        raise ConfigError("cannot edit this file: its top level is not a block mapping (settings:, feeds:)")
    return root


def _feeds_node(root: MappingNode | None) -> tuple[Node, Node] | None:
    if root is None:
        return None
    return next(((k, v) for k, v in root.value if getattr(k, "value", None) == "feeds"), None)


def _appended(text: str, feed: NewFeed) -> str:
    from ruamel.yaml.nodes import ScalarNode, SequenceNode

    doc = _Text(text)
    root = _compose(text)
    found = _feeds_node(root)
    if found is None:  # no `feeds:` yet: the key goes at the end
        column = doc.column(root.start_mark.index) if root is not None else 0
        return doc.insert(len(text), f"{' ' * column}feeds:{doc.newline}" + _entry(feed, column + 2, 2, doc.newline))
    key, value = found
    if isinstance(value, SequenceNode) and not value.flow_style and value.value:
        items = value.value
        dash_column = doc.column(value.start_mark.index)
        first = items[0].start_mark.index
        offset = doc.column(first) - dash_column if doc.line_start(first) == doc.line_start(value.start_mark.index) else 2
        return doc.insert(_item_end(doc, items[-1], dash_column), _entry(feed, dash_column, offset, doc.newline))
    # An empty list: `feeds:`, `feeds: null` or `feeds: []` (on the key's line). The entry goes under the key.
    if isinstance(value, SequenceNode) and value.value or not isinstance(value, (ScalarNode, SequenceNode)):
        raise ConfigError("cannot edit this file: write `feeds:` as a block list (`- url: ...` lines) to add to it")
    key_line = doc.line_start(key.start_mark.index)
    start, end = value.start_mark.index, value.end_mark.index
    if end > start:  # an explicit null or [] on the key's line: removed
        if doc.line_start(start) != key_line or doc.line_start(end - 1) != key_line:
            raise ConfigError("cannot edit this file: write `feeds:` as a block list (`- url: ...` lines) to add to it")
        text = text[:start].rstrip(" \t") + text[end:]
        doc = _Text(text)
    column = doc.column(key.start_mark.index)
    at = doc.line_end(key_line)
    while at < len(text) and _is_comment(doc.line(at), column):  # a comment under the key stays above the entries
        at = doc.line_end(at)
    return doc.insert(at, _entry(feed, column + 2, 2, doc.newline))


def _without(text: str, index: int) -> str:
    """The text without the ``index``-th entry of ``feeds:`` (and ``feeds: []`` if it was the last)."""
    from ruamel.yaml.nodes import SequenceNode

    doc = _Text(text)
    found = _feeds_node(_compose(text))
    if found is None or not isinstance(found[1], SequenceNode) or found[1].flow_style:
        raise ConfigError("cannot edit this file: write `feeds:` as a block list (`- url: ...` lines) to remove from it")
    key, value = found
    items = value.value
    dash_column = doc.column(value.start_mark.index)
    start = doc.line_start(_dash(doc, items[index], dash_column))
    end = _item_end(doc, items[index], dash_column)
    text = text[:start] + text[end:]
    if len(items) == 1:  # `feeds:` with nothing under it is null, which the config refuses: an empty list
        colon = text.index(":", key.end_mark.index)
        text = text[: colon + 1] + " []" + text[colon + 1 :]
    return text


def _dash(doc: _Text, item: Node, dash_column: int) -> int:
    """The offset of the ``-`` that opens a list item (on the item's line or a line above)."""
    at = doc.line_start(item.start_mark.index)
    while True:
        line = doc.line(at)
        if line[:dash_column].strip() == "" and line[dash_column : dash_column + 1] == "-":
            return at + dash_column
        if at == 0:
            raise ConfigError("cannot edit this file: a `feeds:` entry's dash was not found")
        at = doc.line_start(at - 1)


def _item_end(doc: _Text, item: Node, dash_column: int) -> int:
    """Just past an entry's last line: its last value's line (with that line's comment), then the
    comment lines indented under the entry that follow it; not the blank or comment lines at the
    list's own indentation (they belong to what follows)."""
    last = max((node.end_mark.index for pair in item.value for node in pair), default=item.end_mark.index)
    last = len(doc.text[:last].rstrip())  # a block scalar ends past its line break, and the blank lines after it
    at = doc.line_end(max(last - 1, item.start_mark.index))
    while at < len(doc.text) and _is_comment(doc.line(at), dash_column):
        at = doc.line_end(at)
    return at


def _is_comment(line: str, column: int) -> bool:
    """A comment-only line indented deeper than ``column``."""
    stripped = line.lstrip(" \t")
    return stripped.startswith("#") and len(line) - len(stripped) > column


def _entry(feed: NewFeed, dash_column: int, offset: int, newline: str) -> str:
    pad, inner = " " * dash_column, " " * (dash_column + max(offset, 2))
    lines = [f"{pad}-{' ' * (max(offset, 2) - 1)}url: {_scalar(feed.url)}"]
    if feed.name:
        lines.append(f"{inner}name: {_scalar(feed.name)}")
    if feed.interval:
        lines.append(f"{inner}interval: {_scalar(feed.interval)}")
    return newline.join(lines) + newline


def _scalar(value: str) -> str:
    """``value`` as YAML: plain when that reads back as the same string, else double-quoted."""
    if _PLAIN.fullmatch(value) and value == value.strip() and ": " not in value and " #" not in value and not value.endswith(":"):
        if _reads_back(value):
            return value
    quoted = json.dumps(value, ensure_ascii=False)  # JSON's escapes are YAML's double-quoted ones
    for char in "\x85\u2028\u2029":  # line breaks to YAML, even inside quotes
        quoted = quoted.replace(char, f"\\u{ord(char):04x}")
    return quoted


def _reads_back(value: str) -> bool:
    import yaml

    try:
        loaded: Any = yaml.safe_load(value)
    except yaml.YAMLError:
        return False
    return isinstance(loaded, str) and loaded == value


# -- OPML out -----------------------------------------------------------------------------------

_XML_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def feeds_opml(feeds: Sequence[FeedConfig], title: str, created: datetime) -> str:
    """The feeds as an OPML 2.0 subscription list: one ``<outline type="rss">`` each, its name as
    ``text`` and ``title`` (an unnamed feed's ``text`` is its address, as the format wants some
    text: ``feeds_from_opml`` reads that back as no name). Intervals are not part of OPML."""
    from email.utils import format_datetime
    from xml.etree import ElementTree as ET

    def clean(value: str) -> str:
        return _XML_FORBIDDEN.sub("", value)

    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = clean(title)
    ET.SubElement(head, "dateCreated").text = format_datetime(created, usegmt=True)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        if feed.name:
            ET.SubElement(body, "outline", type="rss", text=clean(feed.name), title=clean(feed.name), xmlUrl=clean(feed.url))
        else:
            ET.SubElement(body, "outline", type="rss", text=clean(feed.url), xmlUrl=clean(feed.url))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
