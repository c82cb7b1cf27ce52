"""The in-process ceiling: decode + preprocess + batched forward pass, no HTTP.

Measured the way the server runs: ``workers`` processes at once, each with one math thread
and the server's runtime (``NN_RUNTIME``: ONNX Runtime unless it says ``mxnet``, then with
MXNet's synchronous engine), so "HTTP throughput / ceiling" compares like with like.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

BATCH = 64
SERVER_ENV = {"OMP_NUM_THREADS": "1", "MXNET_ENGINE_TYPE": "NaiveEngine"}


def images_per_second(duration_s: float) -> float:
    """One process's rate through ``LeNet.classify_each`` in batches of ``BATCH``."""
    from bench.corpus import make_corpus
    from nn_server.core.config import Config
    from nn_server.engine.serving import load
    from nn_server.networks.lenet import LeNet

    corpus = make_corpus()
    config = Config.from_env()
    net = load(LeNet, LeNet.shipped_weights(), config.runtime, config.precision)
    batch = [corpus[i % len(corpus)] for i in range(BATCH)]
    net.classify_each(batch)  # warm-up: first calls allocate
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < duration_s:
        net.classify_each(batch)
        done += len(batch)
    return done / (time.perf_counter() - started)


def measure_ceiling(duration_s: float, workers: int) -> float:
    """Images per second of ``workers`` such processes running side by side."""
    env = {**os.environ, **SERVER_ENV}
    runs = [
        subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(duration_s)], env=env,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    return sum(float(run.communicate(timeout=duration_s + 120)[0]) for run in runs)


if __name__ == "__main__":
    print(images_per_second(float(sys.argv[1])))
