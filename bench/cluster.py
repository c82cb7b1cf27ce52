"""``python -m bench cluster``: requests/s through nginx in front of 1, 2 and 3 replicas, and
the swap lag (issue 21).

It starts what ``deploy/compose.yaml`` describes, on loopback: Debian's ``redis-server``
(NN_STATE_URL), a shared weights directory (NN_WEIGHTS_URL), replicas of
``python -m nn_server`` with one worker each (NN_WORKERS=1, access logs off, as in
``python -m bench``), and deploy/nginx.conf run by Debian's nginx (its access log on, as an
operator runs it). Then:

* for each replica count, closed-loop ``/lenet/classify`` load through nginx at each
  concurrency, and one point straight at a replica without nginx, for what nginx costs;
* the swap lag: one quick training on a replica gives a second version; then ``--swaps``
  times the served version is changed through nginx (``POST /lenet/versions/V/serve``) and
  every replica is polled until it answers with V. The lag is from the request to the first
  answer with V, per replica.

Every process shares this machine's cores with the load generator: the figures say what
nginx and the shared state cost and that the replicas share the load, not how N machines
scale.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.corpus import make_corpus, single_bodies
from bench.load import LoadResult, have_wrk, run_load
from bench.nginx import start_nginx
from bench.server import AUTH, Server, running_server
from bench.services import free_port, redis_server

QUICK_TRAINING = {"NN_TRAIN_EPOCHS": "1", "NN_TRAIN_SUBSET": "1000", "NN_TEST_SUBSET": "500"}
"""The second version for the swaps: its accuracy does not matter, only that it exists."""
TRAINING_TIMEOUT_S = 300.0
SWAP_TIMEOUT_S = 10.0
POLL_S = 0.005


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replicas", default="1,2,3", help="comma-separated replica counts")
    p.add_argument("--concurrency", default="8,32", help="comma-separated load points")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per load point")
    p.add_argument("--swaps", type=int, default=10, help="served-version changes to time")
    p.add_argument("--tool", choices=("auto", "wrk", "asyncio"), default="auto")
    p.add_argument("--smoke", action="store_true",
                   help="two replicas, short points, two swaps: checks the command works (CI)")
    p.add_argument("--json", help="also write the figures to this file")
    return p.parse_args(argv)


def request(url: str, method: str = "GET", body: bytes | None = None) -> dict[str, Any]:
    """One JSON request with the default credentials; raises on anything but 200."""
    sent = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": AUTH, "Content-Type": "application/json"})
    with urllib.request.urlopen(sent, timeout=30) as answer:
        data: dict[str, Any] = json.loads(answer.read())
        return data


@contextlib.contextmanager
def replicas(count: int, state_url: str, weights_url: str) -> Iterator[list[Server]]:
    """``count`` replicas on the shared state, started one after another (the first seeds
    the shared weights with the shipped ones)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running_server(1, {
            "NN_STATE_URL": state_url, "NN_WEIGHTS_URL": weights_url,
            "NN_REPLICA": f"r{i + 1}", "NN_ACCESS_LOG": "0", **QUICK_TRAINING}))
            for i in range(count)]


def second_version(trainer: Server) -> tuple[str, str]:
    """Train once on ``trainer`` and return (the served version, the other one)."""
    request(f"{trainer.url}/lenet/train", "POST")
    deadline = time.monotonic() + TRAINING_TIMEOUT_S
    while request(f"{trainer.url}/lenet/train/status")["state"] == "training":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the training did not finish within {TRAINING_TIMEOUT_S:.0f} s")
        time.sleep(0.5)
    listed = request(f"{trainer.url}/lenet/versions")
    others = [v["version"] for v in listed["versions"] if v["version"] != listed["served"]]
    if not others:
        raise RuntimeError(f"the training left no second version: {listed}")
    return str(listed["served"]), str(others[0])


def swap_lags(front: str, servers: list[Server], version: str, image: bytes) -> list[float]:
    """Serve ``version`` through nginx; seconds until each replica answers with it."""
    asked = time.monotonic()
    request(f"{front}/lenet/versions/{version}/serve", "POST")
    lags: dict[str, float] = {}
    while len(lags) < len(servers):
        if time.monotonic() - asked > SWAP_TIMEOUT_S:
            raise RuntimeError(f"replicas still off {version} after {SWAP_TIMEOUT_S:.0f} s")
        for server in servers:
            if server.url not in lags and request(
                    f"{server.url}/lenet/classify", "POST", image)["weights_version"] == version:
                lags[server.url] = time.monotonic() - asked
        time.sleep(POLL_S)
    return list(lags.values())


def row(label: str, result: LoadResult) -> tuple[str, ...]:
    return (label, f"{result.rps:,.0f}", f"{result.p50_ms:.2f}", f"{result.p90_ms:.2f}",
            f"{result.p99_ms:.2f}", str(result.errors))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    counts = [1, 2] if args.smoke else [int(n) for n in args.replicas.split(",")]
    points = [8] if args.smoke else [int(c) for c in args.concurrency.split(",")]
    duration = 0.5 if args.smoke else args.duration
    swaps = 2 if args.smoke else args.swaps
    tool = args.tool if args.tool != "auto" else ("wrk" if have_wrk() else "asyncio")
    bodies = single_bodies(make_corpus())
    figures: dict[str, Any] = {"load": [], "swap_lag_s": []}
    rows: list[tuple[str, ...]] = []

    with tempfile.TemporaryDirectory(prefix="nn-bench-cluster-") as tmp:
        work = Path(tmp)
        (work / "weights").mkdir()
        with redis_server(work) as redis, \
                replicas(max(counts), redis.url, (work / "weights").as_uri()) as servers:
            addresses = [s.url.removeprefix("http://") for s in servers]
            run_load(servers[0].url, "/lenet/classify", bodies, 1, min(1.0, duration), tool)
            for c in points:
                direct = run_load(servers[0].url, "/lenet/classify", bodies, c, duration, tool)
                figures["load"].append({"replicas": 1, "nginx": False, **asdict(direct),
                                        "rps": direct.rps})
                rows.append(row(f"1 replica, no nginx, c={c}", direct))
            for n in counts:
                listen = free_port()
                with start_nginx(listen, addresses[:n], work / f"nginx-{n}"):
                    front = f"http://127.0.0.1:{listen}"
                    run_load(front, "/lenet/classify", bodies, 1, min(1.0, duration), tool)
                    for c in points:
                        result = run_load(front, "/lenet/classify", bodies, c, duration, tool)
                        figures["load"].append({"replicas": n, "nginx": True, **asdict(result),
                                                "rps": result.rps})
                        rows.append(row(f"{n} replica{'s' * (n > 1)} behind nginx, c={c}",
                                        result))

            listen = free_port()
            with start_nginx(listen, addresses, work / "nginx-swaps"):
                served, other = second_version(servers[-1])
                for i in range(swaps):
                    target = other if i % 2 == 0 else served
                    figures["swap_lag_s"].append(swap_lags(
                        f"http://127.0.0.1:{listen}", servers, target, bodies[0]))

    console = Console(width=max(100, Console().width))
    table = Table(title=f"nn-server cluster: /lenet/classify, {duration:g} s per point, load "
                        f"tool {tool}, {platform.node()} ({os.cpu_count()} cores shared by "
                        "every process)")
    for header in ("load", "requests/s", "p50 ms", "p90 ms", "p99 ms", "errors"):
        table.add_column(header, justify="left" if header == "load" else "right")
    for line in rows:
        table.add_row(*line)
    console.print(table)
    worst = [max(lags) for lags in figures["swap_lag_s"]]
    every = [lag for lags in figures["swap_lag_s"] for lag in lags]
    console.print(f"swap lag over {swaps} swaps x {len(servers)} replicas: median "
                  f"{statistics.median(every) * 1000:.0f} ms, slowest replica per swap median "
                  f"{statistics.median(worst) * 1000:.0f} ms, max {max(worst) * 1000:.0f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    errors = sum(point["errors"] for point in figures["load"])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
