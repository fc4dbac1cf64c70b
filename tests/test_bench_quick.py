"""The benchmark suite's quick mode runs end to end and reports every figure (no timing asserts)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the quick benchmark takes minutes: `pytest -m slow` (CI runs it)

ROOT = Path(__file__).resolve().parents[1]

FIGURES = (
    "ingest_vs_extract_ceiling",
    "dedup_ms_per_article@1k",
    "dedup_ms_per_article@5k",
    "dedup_growth",
    "index_bytes_per_article",
    "poll_round_vs_reader",
    "restart_ready_s",
    "peak_rss_day_mb",
    "help_vs_import_typer",
    "clusters_json_vs_bare_imports",
)
CLUSTER_FIGURES = (  # only where PostgreSQL's server binaries are (the run lists the benchmark under "skipped" otherwise)
    "cluster_first_round_1_worker_vs_reader",
    "cluster_first_round_2_workers_vs_1",
    "cluster_first_round_single_process_vs_reader",
    "cluster_steady_cpu_per_feed_vs_single",
    "cluster_first_round_worker_alone_vs_reader_with_pages",
    "cluster_first_round_1_worker_vs_reader_with_pages",
    "cluster_first_round_worker_cpu_vs_reader_with_pages",
    "cluster_first_round_cpu_1_worker_vs_2",
)
POSTGRES_FIGURES = {name: "cluster" for name in CLUSTER_FIGURES} | {"restart_postgresql_ready_s": "restart_postgresql"}


@pytest.fixture(scope="module")
def quick() -> dict:
    pytest.importorskip("reader", reason="poll_round_vs_reader needs the reader library (pip install reader)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"benchmark run failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n{proc.stdout[-4000:]}"
    return json.loads(proc.stdout)


def test_quick_run_is_ok(quick: dict) -> None:
    assert quick["mode"] == "quick"
    assert quick["ok"] is True and quick["errors"] == {}


@pytest.mark.parametrize("name", FIGURES + tuple(POSTGRES_FIGURES))
def test_every_figure_is_reported(quick: dict, name: str) -> None:
    bench = POSTGRES_FIGURES.get(name)
    if bench in quick.get("skipped", {}):
        pytest.skip(f"the {bench} benchmark did not run: {quick['skipped'][bench]}")
    fig = quick["figures"][name]
    value = fig["value"]
    assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    assert fig["unit"] and fig["goal"] and "baseline" in fig
    assert fig["pass"] in (True, False, None)


def test_planted_duplicates_are_found(quick: dict) -> None:
    """The dedup sample plants copies and reports; the index must see them (a broken input would not)."""
    for name in ("dedup_ms_per_article@1k", "dedup_ms_per_article@5k"):
        details = quick["figures"][name]["details"]
        assert details["decisions"]["copy"] > 0 and details["decisions"]["report"] > 0


def test_per_host_limit_is_observed(quick: dict) -> None:
    details = quick["figures"]["poll_round_vs_reader"]["details"]
    assert details["answers_200"] > 0 and details["answers_304"] > 0
    assert details["observed"]["max_in_flight_per_host"] <= details["per_host_limit"]
