"""A small HTTP server on loopback that serves scripted routes and logs every request.

Used by ``aggregator demo`` (to replay the bundled corpus as outlets' feeds),
by the tests and by the benchmarks. It only ever binds 127.0.0.1 (or ::1).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Response:
    """A scripted answer. With ``chunks``, the body is streamed chunked, one flush per chunk
    (a generator that sleeps between chunks makes a slow or endless server)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    chunks: Callable[[], Iterator[bytes]] | None = None


Handler = Callable[[Request], Response]


def conditional(request: Request, body: bytes, content_type: str, modified: datetime | None = None) -> Response:
    """200 with ETag/Last-Modified, or 304 when the client's validators still match."""
    etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
    headers = {"Content-Type": content_type, "ETag": etag}
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified, usegmt=True)
    if request.headers.get("if-none-match") == etag:
        return Response(304, b"", {"ETag": etag})
    return Response(200, body, headers)


class LoopbackServer:
    """Serve ``handler`` on 127.0.0.1:<free port> in a background thread (HTTPS when given a TLS context)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the loopback server only binds loopback addresses")
        self.handler = handler
        self.requests: list[Request] = []
        self.connections = 0  # TCP connections accepted (keep-alive reuse shows as fewer)
        self._log_lock = threading.Lock()
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle's algorithm on, the body then
            # waits for the client's delayed ACK (~40 ms a response on loopback).
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with server._log_lock:
                    server.connections += 1

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                request = Request("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
                with server._log_lock:
                    server.requests.append(request)
                try:
                    response = server.handler(request)
                except Exception as exc:  # a broken route answers 500, the server lives on
                    response = Response(500, f"route error: {exc}".encode(), {"Content-Type": "text/plain"})
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                if response.chunks is not None:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    try:
                        for chunk in response.chunks():
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True  # the client gave up: that is the point
                    return
                if response.status != 304 and "Content-Length" not in response.headers:
                    self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if response.status != 304:
                    try:
                        self.wfile.write(response.body)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                return

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def handle_error(self, request: object, client_address: object) -> None:
                return  # a client that hangs up early (deadlines, caps) is expected here, not news

        self._httpd = _Server((host, 0), _RequestHandler)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="loopback-server", daemon=True
        )

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()

    def paths(self) -> list[str]:
        with self._log_lock:
            return [r.path for r in self.requests]
