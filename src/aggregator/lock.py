"""The one-writer rule: one process at a time stores articles into a storage directory (the daemon,
a manual ``poll`` or the demo). A second writer would store articles the first one's in-memory
dedup index never sees, and split stories. ``factory.open_aggregator`` takes this lock; nothing
else does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import DaemonLocked, StorageError

LOCK_FILE = "aggregator.lock"


@contextmanager
def storage_owned(storage_dir: Path, refusal: str) -> Iterator[None]:
    """Hold the storage's one-writer lock for the block; ``DaemonLocked`` with ``refusal`` when
    another process holds it."""
    lock = FileLock(str(storage_dir / LOCK_FILE))
    try:
        storage_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:
        raise DaemonLocked(f"{storage_dir}: {refusal}") from None
    except OSError as exc:
        raise StorageError(f"{storage_dir}: cannot take the storage lock: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()
