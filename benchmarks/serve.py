"""Loopback feed/page servers in their own process, for the ingest benchmark: serving pages is the
outside world's work, so it must not share the measured process's interpreter lock.

Protocol on stdin/stdout: prints the ports of N servers (JSON), reads one line naming a pickle of
N route tables, prints "ready", then serves until its stdin closes and prints the hit counts.
"""

from __future__ import annotations

import json
import pickle
import sys
from contextlib import ExitStack
from pathlib import Path

from aggregator.feedserver import LoopbackServer

from .inputs import Site


def main() -> None:
    n = int(sys.argv[1])
    with ExitStack() as stack:
        sites = [Site() for _ in range(n)]
        servers = [stack.enter_context(LoopbackServer(site, host="127.0.0.1")) for site in sites]
        print(json.dumps([s.port for s in servers]), flush=True)
        tables = pickle.loads(Path(sys.stdin.readline().strip()).read_bytes())
        for site, routes in zip(sites, tables, strict=True):
            site.routes.update(routes)
        print("ready", flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin (or exits)
        try:
            print(json.dumps([dict(site.hits) for site in sites]), flush=True)
        except BrokenPipeError:  # the parent is gone: nobody wants the counts
            pass


if __name__ == "__main__":
    main()
