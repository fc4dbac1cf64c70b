"""The package's exception tree. Callers catch by category, never by message.

    AggregatorError
    ├── ConfigError            bad or unreadable configuration file
    ├── UsageError             a request that cannot be answered as given (an empty search)
    ├── StorageError           database problems
    │   ├── SchemaMismatch     stored dedup signatures use other settings
    │   └── DaemonLocked       another daemon owns this storage
    ├── FeedError              one feed failed; carries ``url``
    │   ├── FetchError         network / HTTP level
    │   │   ├── NetworkError     no answer at all: connection refused, DNS, timeout
    │   │   ├── HTTPStatusError  an unexpected status code (carries ``status``)
    │   │   └── BodyTooLarge     the decoded body exceeded the cap
    │   └── ParseError         the bytes are not a usable feed
    └── EvalError              a malformed evaluation file (carries ``line``)
"""

from __future__ import annotations


class AggregatorError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(AggregatorError):
    """The configuration file is missing, unreadable or invalid."""


class UsageError(AggregatorError):
    """A request that cannot be answered as given (a search without words, say)."""


class StorageError(AggregatorError):
    """The database cannot be used as asked."""


class SchemaMismatch(StorageError):
    """Stored signatures were made with other settings and cannot be mixed."""


class InboxConflict(StorageError):
    """Answers a transaction was to store from the inbox are gone: another clusterer stored them."""


class DaemonLocked(StorageError):
    """Another daemon already runs on this storage."""


class FeedError(AggregatorError):
    """A single feed failed; the rest of the round goes on."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable: parsing runs in worker processes
        return type(self), (self.url, self.message)


class FetchError(FeedError):
    """The feed or page could not be fetched."""


class NetworkError(FetchError):
    """The server could not be reached or did not answer in time."""


class HTTPStatusError(FetchError):
    """The server answered with a status we do not accept."""

    def __init__(self, url: str, status: int, retry_after: str | None = None) -> None:
        super().__init__(url, f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type, tuple[str, int, str | None]]:  # type: ignore[override]
        return type(self), (self.url, self.status, self.retry_after)


class BodyTooLarge(FetchError):
    """The decoded body exceeded the configured cap."""


class ParseError(FeedError):
    """The fetched bytes are not a feed we can read."""


class EvalError(AggregatorError):
    """An evaluation file is malformed."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return type(self), (self.path, self.line, self.message)
