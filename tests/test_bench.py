"""The benchmark command runs (a smoke test: figures come from ``python -m bench``, not CI).

The command's smoke run uses the asyncio load generator; wrk, which the figures use, is
checked on its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench.__main__ import RAW_MEDIA
from bench.corpus import make_corpus, single_bodies
from bench.load import JSON, run_wrk
from tests.conftest import ROOT, LiveServer


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
    raw = figures["raw_body"]
    assert raw["concurrency"] == 8 and raw["requests"] > 0 and raw["errors"] == 0
    assert 0 < raw["of_ceiling"] == raw["rps"] / figures["ceiling_images_per_s"]


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


def test_wrk_sends_json_and_raw_image_bodies(server: LiveServer) -> None:
    """The figures' load generator (installed by ``install.sh dev``): every request it
    sends, JSON or the image file itself, is answered 200."""
    corpus = make_corpus(6)
    for bodies, media in ((single_bodies(corpus), JSON), (corpus, RAW_MEDIA)):
        result = run_wrk(server.url, "/lenet/classify", bodies, 2, 1, media)
        assert result.tool == "wrk" and result.requests > 10, media
        assert result.errors == 0, media


def test_floor_bench_splits_a_request_by_thread_and_times_bare_sanic_and_asyncio() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "floor", "--duration", "0.5", "--workers", "1",
         "--concurrency", "4", "--tool", "asyncio"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    ours = re.search(r"nn-server c=4 .*?([\d,]+) requests/s .*? 0 errors, .*? = (\d+) µs a "
                     r"request: event loops (\d+) µs, inference threads (\d+) µs", run.stdout)
    bare = re.search(r"bare Sanic c=4 .*?([\d,]+) requests/s, 0 errors", run.stdout)
    raw = re.search(r"minimal asyncio server c=4 .*?([\d,]+) requests/s .*? 0 errors",
                    run.stdout)
    assert ours and bare and raw, run.stdout
    total, loop, inference = (int(ours.group(i)) for i in (2, 3, 4))
    # /proc counts CPU in 10 ms ticks: over a 0.5 s run each figure is off by up to a tick
    # shared among ~1,000 requests, so the parts may sum to a little over the whole.
    assert loop > 0 and inference > 0 and loop + inference <= 1.1 * total, run.stdout
