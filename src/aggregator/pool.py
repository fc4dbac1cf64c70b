"""The process pool CPU-bound work goes to (extracting pages, parsing big feeds), started on first
use, so the event loop keeps fetching and storing while the other cores work."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import select
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pool:
    """``workers`` processes (0: one per core this process may run on; 1: threads instead), started on first use."""

    def __init__(self, workers: int) -> None:
        self.workers = workers or _cores()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self) -> concurrent.futures.Executor | None:
        if self.workers <= 1:
            return None
        if self._pool is None:
            # forkserver: forking a process that runs threads (HTTP client, servers) is not safe
            context = multiprocessing.get_context("forkserver")
            self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_setup,
                                                                initargs=(os.getpid(),))
        return self._pool

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a worker process; in a thread when the pool is off."""
        pool = self._executor()
        if pool is None:
            return await asyncio.to_thread(func, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, func, *args)
        except concurrent.futures.process.BrokenProcessPool:  # a worker died (e.g. out of memory): start afresh
            log.warning("a worker process died during %s; restarting the pool", func.__name__)
            self._pool = None
            return await asyncio.to_thread(func, *args)


def _worker_setup(parent: int) -> None:
    """In each pool worker: leave Ctrl-C to the parent (which stops the pool itself), and exit
    when the parent is gone. A worker outlives a parent killed with SIGKILL otherwise: it holds
    the write ends of its own task queue and of the forkserver's liveness pipe, so neither it nor
    the forkserver ever sees the parent leave."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        watched = os.pidfd_open(parent)  # readable once the parent has exited (Linux 5.3+)
    except (AttributeError, OSError):
        watched = None

    def watch() -> None:
        if watched is not None:
            select.select([watched], [], [])
        else:
            pause = threading.Event()
            while _alive(parent):
                pause.wait(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, the process is only looked up
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists (under another user)
    return True


def _cores() -> int:
    """The cores this process may run on (its CPU affinity: a container or ``taskset`` may give it fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
