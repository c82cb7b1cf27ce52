"""Prometheus metrics for ``GET /metrics``, with prometheus-client's multi-process mode.

Every process of one server writes its counters and histograms to memory-mapped files in
``<state_dir>/metrics/<main pid>/`` (``PROMETHEUS_MULTIPROC_DIR``, set by the main process
before anything imports the library, as it requires: ``Config.prepare_metrics``). A scrape,
answered by any worker, sums every process's files with ``MultiProcessCollector`` and adds
the gauges that describe the server now (``ServerGauges``). A dead worker's counts stay in
the sums, so counters never go backwards when a worker is replaced; ``mark_process_dead``
is called for it, as the library documents.

    nn_requests_total{route,method,status}     counter    HTTP requests answered
    nn_request_duration_seconds{route}          histogram  request to response
    nn_batch_size{network}                      histogram  images per forward pass
    nn_weights_info{network,version}            gauge      the weights this worker serves
    nn_training{network}                        gauge      1 while the network trains
                                                           (absent while unknown)
    nn_state_up                                 gauge      1 while the state (a cluster's
                                                           Redis) answers, else 0
    nn_workers{state="expected"|"live"}         gauge      worker processes
    nn_worker_restarts_total                    counter    dead workers replaced
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from nn_server.core.config import MULTIPROC_ENV

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def forget(pid: int) -> None:
    """A worker died: what the library documents for its live gauges."""
    if os.environ.get(MULTIPROC_ENV):
        mark_process_dead(pid)  # type: ignore[no-untyped-call]


class WorkerMetrics:
    """One worker's counters and histograms (files in the shared folder, no registry)."""

    def __init__(self) -> None:
        self.requests = Counter("nn_requests_total",
                                "HTTP requests answered, by route, method and status.",
                                ["route", "method", "status"], registry=None)
        self.latency = Histogram("nn_request_duration_seconds",
                                 "Time from request to response, by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=None)
        self.batches = Histogram("nn_batch_size",
                                 "Images per forward pass of the micro-batcher, by network.",
                                 ["network"], buckets=BATCH_BUCKETS, registry=None)
        # labels() looks the child up each time; the hot path keeps its own dictionary.
        self._counted: dict[tuple[str, str, int], Callable[[], None]] = {}
        self._timed: dict[str, Callable[[float], None]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        count = self._counted.get(key)
        if count is None:
            count = self._counted[key] = self.requests.labels(route, method, str(status)).inc
        count()
        time = self._timed.get(route)
        if time is None:
            time = self._timed[route] = self.latency.labels(route).observe
        time(seconds)

    def observe_batch(self, network: str, size: int) -> None:
        self.batches.labels(network).observe(size)


class ServerGauges(Collector):
    """What the server is now, read at scrape time by the worker that answers."""

    def __init__(self, weights: Mapping[str, str | None],
                 training: Mapping[str, bool | None], workers: tuple[int, int, int] | None,
                 ) -> None:
        """``training``: per network, whether it trains; None where the state does not
        answer (a cluster's Redis is away), so the rest of a scrape still gets out."""
        self.weights, self.training, self.workers = weights, training, workers

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("nn_weights_info",
                                 "The weights version this worker serves (value 1).",
                                 labels=["network", "version"])
        for network, version in self.weights.items():
            info.add_metric([network, version or ""], 1)
        yield info
        training = GaugeMetricFamily("nn_training", "1 while the network trains, else 0.",
                                     labels=["network"])
        for network, busy in self.training.items():
            if busy is not None:
                training.add_metric([network], int(busy))
        yield training
        yield GaugeMetricFamily("nn_state_up", "1 while the training state answers, else 0.",
                                value=int(None not in self.training.values()))
        if self.workers is not None:
            expected, live, restarts = self.workers
            workers = GaugeMetricFamily("nn_workers", "Worker processes, expected and live.",
                                        labels=["state"])
            workers.add_metric(["expected"], expected)
            workers.add_metric(["live"], live)
            yield workers
            yield CounterMetricFamily("nn_worker_restarts", "Dead workers replaced.",
                                      value=restarts)


def render(gauges: ServerGauges) -> bytes:
    """The text exposition of every process's metrics plus ``gauges``."""
    registry = CollectorRegistry()
    path = os.environ.get(MULTIPROC_ENV)
    if path and os.path.isdir(path):
        MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    registry.register(gauges)
    return generate_latest(registry)
