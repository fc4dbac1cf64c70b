"""Reading ahead (``read_ahead``): the next items of an iterator are produced in a thread while the
caller works on the current one. A restart reads the window's signatures from the database (the
driver waits on its socket or its file, without the GIL) while the dedup index takes in the chunk
before: the two overlap instead of taking turns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

STEP_S = 0.05  # how often a caller that stopped early looks whether the reader has ended


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, each produced in a thread of its own, at most ``depth`` ahead of the caller.
    ``items`` runs wholly in that thread (a generator that opens a database connection opens,
    uses and closes it there). Its exception is raised to the caller; a caller that stops early
    stops it (closed in its thread, its connection returned)."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                box.put((True, item))
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the caller
            box.put((False, exc))
        else:
            box.put((False, None))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            more, value = box.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # a reader waiting on a full box: make room until it ends
            try:
                box.get(timeout=STEP_S)
            except queue.Empty:
                pass
        thread.join()
