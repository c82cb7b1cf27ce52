"""Prometheus metrics for ``GET /metrics``, summed over every worker process.

Each worker counts in memory (one event loop, so no locks) and publishes a snapshot to
``<state_dir>/metrics/<server id>/<worker pid>.json`` every ``FLUSH_S`` and whenever it is
scraped; the worker that answers a scrape sums the snapshots of every worker of this server
and renders the text exposition format. A worker that exits takes its file with it, so its
counts leave the sums: Prometheus's ``rate()`` treats that as a counter reset.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nn_server.records import write_atomic

SERVER_ID_ENV = "NN_SERVER_ID"
"""Set by ``python -m nn_server`` to its own pid, so workers of one server share a folder."""
FLUSH_S = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class Histogram:
    """Cumulative-on-render bucket counts, their sum and count, as Prometheus wants them."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.total += value * times
        self.count += times

    def add(self, other: Mapping[str, Any]) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other["counts"], strict=True)]
        self.total += other["total"]
        self.count += other["count"]

    def as_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "total": self.total, "count": self.count}


@dataclass
class WorkerMetrics:
    """What one worker has counted since it started."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, status)] += 1
        if route not in self.latency:
            self.latency[route] = Histogram(LATENCY_BUCKETS)
        self.latency[route].observe(seconds)

    def snapshot(self, batch_sizes: Mapping[str, Mapping[int, int]]) -> dict[str, Any]:
        """A JSON-able copy; ``batch_sizes`` is network → {batch size: forward passes}."""
        batches: dict[str, dict[str, Any]] = {}
        for network, sizes in batch_sizes.items():
            histogram = Histogram(tuple(float(b) for b in BATCH_BUCKETS))
            for size, times in sizes.items():
                histogram.observe(size, times)
            batches[network] = histogram.as_dict()
        return {
            "requests": [[*key, n] for key, n in self.requests.items()],
            "latency": {route: h.as_dict() for route, h in self.latency.items()},
            "batches": batches,
        }


def folder(state_dir: Path) -> Path:
    return state_dir / "metrics" / os.environ.get(SERVER_ID_ENV, str(os.getpid()))


def publish(state_dir: Path, snapshot: Mapping[str, Any]) -> None:
    write_atomic(folder(state_dir) / f"{os.getpid()}.json", json.dumps(snapshot).encode())


def withdraw(state_dir: Path) -> None:
    (folder(state_dir) / f"{os.getpid()}.json").unlink(missing_ok=True)


def collect(state_dir: Path) -> list[dict[str, Any]]:
    """Every worker's latest snapshot (a file caught mid-replace is skipped this once)."""
    snapshots = []
    for path in folder(state_dir).glob("*.json"):
        try:
            snapshots.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return snapshots


def render(snapshots: Iterable[Mapping[str, Any]], weights: Mapping[str, str | None],
           training: Mapping[str, bool]) -> str:
    """The Prometheus text format for the sum of ``snapshots`` plus the current gauges."""
    requests: Counter[tuple[str, str, int]] = Counter()
    latency: dict[str, Histogram] = {}
    batches: dict[str, Histogram] = {}
    for snap in snapshots:
        for route, method, status, n in snap["requests"]:
            requests[(route, method, status)] += n
        for route, data in snap["latency"].items():
            latency.setdefault(route, Histogram(LATENCY_BUCKETS)).add(data)
        for network, data in snap["batches"].items():
            bounds = tuple(float(b) for b in BATCH_BUCKETS)
            batches.setdefault(network, Histogram(bounds)).add(data)

    lines = [
        "# HELP nn_requests_total HTTP requests answered, by route, method and status.",
        "# TYPE nn_requests_total counter",
    ]
    for (route, method, status), n in sorted(requests.items()):
        lines.append(f'nn_requests_total{{route="{route}",method="{method}",'
                     f'status="{status}"}} {n}')
    lines += [
        "# HELP nn_request_duration_seconds Time from request to response, by route.",
        "# TYPE nn_request_duration_seconds histogram",
    ]
    for route, histogram in sorted(latency.items()):
        lines += histogram_lines("nn_request_duration_seconds", f'route="{route}"', histogram)
    lines += [
        "# HELP nn_batch_size Images per forward pass of the micro-batcher, by network.",
        "# TYPE nn_batch_size histogram",
    ]
    for network, histogram in sorted(batches.items()):
        lines += histogram_lines("nn_batch_size", f'network="{network}"', histogram)
    lines += [
        "# HELP nn_weights_info The weights version this worker serves (value 1).",
        "# TYPE nn_weights_info gauge",
        *(f'nn_weights_info{{network="{n}",version="{v or ""}"}} 1' for n, v in weights.items()),
        "# HELP nn_training 1 while the network trains, else 0.",
        "# TYPE nn_training gauge",
        *(f'nn_training{{network="{n}"}} {int(t)}' for n, t in training.items()),
    ]
    return "\n".join(lines) + "\n"


def histogram_lines(name: str, labels: str, histogram: Histogram) -> list[str]:
    lines = []
    cumulative = 0
    for bound, count in zip((*histogram.bounds, "+Inf"), histogram.counts, strict=True):
        cumulative += count
        le = bound if isinstance(bound, str) else f"{bound:g}"
        lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
    lines.append(f"{name}_sum{{{labels}}} {histogram.total:.6f}")
    lines.append(f"{name}_count{{{labels}}} {histogram.count}")
    return lines
