"""Loopback feed/page servers in their own process, for the benchmarks: serving is the outside
world's work, so it must not share the measured process's interpreter lock.

Protocol on stdin/stdout: prints the ports of N servers (JSON), reads one line naming a pickle of
N route tables, prints "ready"; then, one command a line: ``routes PATH`` (a pickle of N route
tables merged into the served ones; answers "ready"), ``reset`` (zero the counters; answers "ok"),
``stats`` (answers one JSON line: per server its hit counts by status and most requests in
flight at once). When stdin closes it prints the hit counts and exits.
"""

from __future__ import annotations

import json
import pickle
import sys
from contextlib import ExitStack
from pathlib import Path

from aggregator.tools.feedserver import LoopbackServer

from .inputs import Site


def _merge(sites: list[Site], path: str) -> None:
    tables = pickle.loads(Path(path).read_bytes())
    for site, routes in zip(sites, tables, strict=True):
        site.routes.update(routes)


def main() -> None:
    n = int(sys.argv[1])
    delay_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    with ExitStack() as stack:
        sites = [Site(delay_s=delay_s) for _ in range(n)]
        servers = [stack.enter_context(LoopbackServer(site, host="127.0.0.1")) for site in sites]
        print(json.dumps([s.port for s in servers]), flush=True)
        _merge(sites, sys.stdin.readline().strip())
        print("ready", flush=True)
        for line in sys.stdin:  # until the parent closes our stdin (or exits)
            command, _, arg = line.strip().partition(" ")
            if command == "routes":
                _merge(sites, arg)
                print("ready", flush=True)
            elif command == "reset":
                for site in sites:
                    site.reset_counters()
                print("ok", flush=True)
            elif command == "stats":
                print(json.dumps([{"hits": dict(s.hits), "max_in_flight": s.max_in_flight} for s in sites]), flush=True)
        try:
            print(json.dumps([dict(site.hits) for site in sites]), flush=True)
        except BrokenPipeError:  # the parent is gone: nobody wants the counts
            pass


if __name__ == "__main__":
    main()
