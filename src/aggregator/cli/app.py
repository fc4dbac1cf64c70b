"""The command line's frame: the Typer app, its options, the one-line error mapping and exit codes,
and the helpers the commands share. Only Typer and the standard library load at start: each
command imports what it needs when it runs (``aggregator --help`` stays instant)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import AggregatorError, ConfigError, DaemonLocked, UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from ..config import Config

# Plain help (no Rich boxes): rendering help through Rich costs more than all of Typer's start.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="News aggregator: feeds in, deduplicated stories out.")

ConfigOption = Annotated[Path, typer.Option("--config", "-c", envvar="AGGREGATOR_CONFIG", help="Config file (feeds and settings).")]
F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR, EXIT_USAGE, EXIT_LOCKED = 1, 2, 3
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)  # no news older than this; and date arithmetic stays in range
LATEST_DAY = date(9998, 12, 31)


@functools.cache
def out() -> Console:
    """Standard output. Feed text (titles, outlet names, errors quoting servers) is printed as it
    is: no Rich markup ("[/]" would crash a table, "[video]" would vanish) and no emoji codes."""
    from rich.console import Console

    console = Console(markup=False, emoji=False, highlight=False)
    console.soft_wrap = not console.is_terminal  # to a pipe or file: lines whole (URLs unbroken), not wrapped at 80 columns
    return console


@functools.cache
def err() -> Console:
    """Standard error: one error, one line, however long."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False)


def print_json(data: Any) -> None:
    """``--json`` output: indented by two, non-ASCII as it is, unhighlighted. (Rich's highlighting of
    a day's 3,000 stories took seconds, and the standard library's indenting encoder, pure Python,
    60 ms: orjson writes the same text in 5.)"""
    import orjson

    text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:
        sys.stdout.write(text.decode())
    else:  # UTF-8 as it is, not decoded and encoded again
        sys.stdout.flush()
        binary.write(text)
        binary.flush()


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while a long job runs, when stderr is a terminal (nothing in a
    pipe or a log). Yields ``advance(total)``: one step done, of ``total``."""
    if not err().is_terminal:
        yield lambda total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(total: int) -> None:
            bar.update(task, total=total, advance=1)

        yield advance


def flagged(flag: str, style: str, message: str) -> Text:
    """``flag`` in colour, then ``message`` verbatim."""
    from rich.text import Text

    return Text.assemble((flag, style), " ", message)


def friendly(func: F) -> F:
    """User mistakes become one line on stderr and an exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            err().print(flagged("config error:", "red", str(exc)))
            raise typer.Exit(EXIT_USAGE) from None
        except UsageError as exc:
            err().print(flagged("error:", "red", str(exc)))
            raise typer.Exit(EXIT_USAGE) from None
        except DaemonLocked as exc:
            err().print(flagged("error:", "red", str(exc)))
            raise typer.Exit(EXIT_LOCKED) from None
        except AggregatorError as exc:
            err().print(flagged("error:", "red", str(exc)))
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"aggregator {__version__}")
        raise typer.Exit()


@functools.cache
def _exit_without_collecting() -> None:
    """Skip the garbage collection the interpreter runs as it exits. It walks every object still
    alive (tens of thousands of the modules', and what a command read) and took 50 ms of the 430 of
    a day's ``clusters --json``; once a command returns it has closed its store and flushed its
    output, and nothing of ours waits on a finalizer. (At exit only: objects are frozen, never
    collected, so a test running commands in its own process keeps its collector.)"""
    atexit.register(gc.freeze)


@app.callback()
def main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug).")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    _exit_without_collecting()
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def load(config: Path) -> Config:
    from ..config import load_config

    return load_config(config)


def given_config(config: Path) -> Config | None:
    """For commands that also work without a config: the config when it exists or was named
    (a named one that is missing is an error); None for the default path when it is absent."""
    return load(config) if config.exists() or config != DEFAULT_CONFIG_PATH else None


def to_poll(config: Path) -> Config:
    """For the commands that poll: a config without feeds is a mistake, said before any file is made."""
    loaded = load(config)
    if not loaded.feeds:
        raise ConfigError(f"{config}: no feeds to poll: list them under `feeds:` (see config/feeds.yaml)")
    return loaded


def local(dt: datetime, tz: tzinfo) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def print_row(*fields: str) -> None:
    """One tab-separated line to stdout, as it is (Rich would expand the tabs): the listings' form
    for a pipe or a file. Tabs and line breaks inside a field become spaces."""
    typer.echo("\t".join(" ".join(f.split("\t")).replace("\r", " ").replace("\n", " ") for f in fields))


def format_duration(seconds: float) -> str:
    """Seconds as the config writes durations: 45s, 15m, 2h, 1h30m, 1d."""
    total = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2]) or "0s"


def parse_since(value: str, now: datetime, tz: tzinfo) -> datetime:
    """A duration ago, or an ISO date-time (local time in ``tz`` when it names no offset)."""
    from ..config import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"expected a duration (6h, 2d; at most 366d) or an ISO date-time, got {value!r}", param_hint="--since") from None
        when = when if when.tzinfo else when.replace(tzinfo=tz)
    else:
        when = now - timedelta(seconds=seconds)
    if not EARLIEST <= when <= now + timedelta(days=1):
        raise typer.BadParameter(f"expected a time between 1970 and now, got {value!r}", param_hint="--since")
    return when


def parse_day(value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected a date YYYY-MM-DD, got {value!r}", param_hint="--date") from None
    if not EARLIEST.date() <= day <= LATEST_DAY:
        raise typer.BadParameter(f"expected a date between {EARLIEST.date()} and {LATEST_DAY}, got {value!r}", param_hint="--date")
    return day
