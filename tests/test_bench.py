"""The benchmark command runs (a smoke test: figures come from ``python -m bench``, not CI).

It uses the asyncio load generator, the fallback CI has; wrk is what the figures use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_bench_smoke_runs_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--workers", "1", "--tool", "asyncio",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "in-process ceiling" in run.stdout and "batch of 256" in run.stdout
    figures = json.loads(out.read_text())
    assert figures["ceiling_images_per_s"] > 0
    assert [p["concurrency"] for p in figures["points"]] == [1, 8]
    assert all(p["errors"] == 0 and p["requests"] > 0 for p in figures["points"])
    assert figures["batch_256"]["images_per_s"] > 0 and figures["idle_rss_mb"] > 0


def test_cluster_bench_smoke_loads_through_nginx_and_times_swaps(tmp_path: Path) -> None:
    out = tmp_path / "cluster.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "cluster", "--smoke", "--tool", "asyncio",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 replicas behind nginx" in run.stdout and "swap lag" in run.stdout
    figures = json.loads(out.read_text())
    assert [(p["replicas"], p["nginx"]) for p in figures["load"]] == [
        (1, False), (1, True), (2, True)]
    assert all(p["errors"] == 0 and p["requests"] > 0 for p in figures["load"])
    assert len(figures["swap_lag_s"]) == 2
    assert all(len(lags) == 2 and 0 < max(lags) < 10 for lags in figures["swap_lag_s"])


def test_precision_bench_scores_and_times_both_forms() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "precision", "--seconds", "0.05", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(run.stdout)
    for name in ("lenet", "fashion"):
        assert figures[name]["served"] == "int8"
        for precision in ("float", "int8"):
            assert figures[name][precision]["accuracy"] > 0.9
            assert all(us > 0 for us in figures[name][precision]["us_per_image"].values())
