"""``serve``: the web app and JSON API (``aggregator.web``) on uvicorn, reading the database beside
the daemon; ``run --serve`` hosts the same app in the daemon's event loop (``serve_beside``).
Starlette and uvicorn load only when serving."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_CONFIG_PATH
from ..errors import AggregatorError
from .app import EXIT_USAGE, ConfigOption, app, err, flagged, friendly, load, out

if TYPE_CHECKING:
    import socket

    import uvicorn

    from ..config import Config
    from ..schedule import Daemon

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
MIN_TOKEN_CHARS = 16
GRACEFUL_S = 5  # open connections get this long to finish when the server stops

HostOption = Annotated[str, typer.Option("--host", help="Address to listen on. Anything but loopback needs --token.")]
PortOption = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="AGGREGATOR_TOKEN", show_default=False,
    help="Needed to mark stories read (Authorization: Bearer TOKEN, or the pages' sign-in); required off loopback.")]


def check_exposure(host: str, token: str | None) -> None:
    """Off loopback, nothing may write without a token: refuse to start (exit 2) before anything is opened."""
    from ..web.security import is_loopback

    problem = None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        problem = f"--token must be at least {MIN_TOKEN_CHARS} characters (e.g. the output of: python3 -c 'import secrets; print(secrets.token_urlsafe())')"
    elif token is None and not is_loopback(host):
        problem = f"--host {host} is not a loopback address: give --token (or AGGREGATOR_TOKEN) so that nothing changes without it"
    if problem:
        err().print(flagged("error:", "red", problem))
        raise typer.Exit(EXIT_USAGE)


def listen(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening socket on host:port (bound here, so that a busy port is one line, not a log), and its URL."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        import os

        reason = exc.strerror if isinstance(exc, socket.gaierror) or not exc.errno else os.strerror(exc.errno)  # (without "while attempting to bind...")
        raise AggregatorError(f"cannot listen on {host}:{port}: {reason or exc}") from None
    bound = sock.getsockname()[1]
    return sock, f"http://{f'[{host}]' if ':' in host else host}:{bound}/"


def server(config: Config, host: str, token: str | None) -> uvicorn.Server:
    """uvicorn serving the app, logging through ``logging``, leaving signals to the caller."""
    import contextlib
    from collections.abc import Iterator

    import uvicorn

    from ..web import make_app

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the caller's handlers stop it (``stop``): uvicorn's would re-raise the signal
            yield

        def stop(self) -> None:
            self.force_exit = self.should_exit  # a second signal: stop waiting for open connections
            self.should_exit = True

    settings = uvicorn.Config(make_app(config, token=token, host=host), log_config=None, lifespan="on", ws="none", http="h11",
                              server_header=False, timeout_graceful_shutdown=GRACEFUL_S)
    return Server(settings)


def quiet_access_log() -> None:
    """For ``run --serve`` (which logs at INFO): uvicorn's start lines and a line per request with -vv only."""
    import logging

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


async def serve_until_signal(web: uvicorn.Server, sock: socket.socket) -> None:
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, web.stop)  # type: ignore[attr-defined]
    try:
        await web.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def serve_beside(daemon: Daemon, web: uvicorn.Server, sock: socket.socket) -> None:
    """The daemon and the web app in one event loop: SIGINT/SIGTERM stop the daemon (its handlers),
    then the app; the app ending on its own (an error) stops the daemon too."""
    import asyncio

    task = asyncio.get_running_loop().create_task(web.serve(sockets=[sock]))
    task.add_done_callback(lambda _: daemon.stop())
    try:
        await daemon.run()
    finally:
        web.should_exit = True
        await task


@app.command()
@friendly
def serve(
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    host: HostOption = DEFAULT_HOST,
    port: PortOption = DEFAULT_PORT,
    token: TokenOption = None,
) -> None:
    """Serve the web pages and the JSON API (/api/) over the stored stories, beside the daemon (loopback by default)."""
    check_exposure(host, token)
    cfg = load(config)
    import asyncio

    from ..store import sqlite_file

    sock, url = listen(host, port)
    web = server(cfg, host, token)
    db = sqlite_file(cfg.database_url)
    if db is not None and not db.exists():
        err().print(flagged("warning:", "yellow", f"{db}: no database here yet; pages answer 503 until `aggregator run` or `poll` makes it"))
    out().print(f"serving {url} (stop with Ctrl-C)")
    sys.stdout.flush()
    asyncio.run(serve_until_signal(web, sock))
