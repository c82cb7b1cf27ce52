"""The in-process ceiling: decode + preprocess + batched forward pass, no HTTP."""

from __future__ import annotations

import time

from nn_server.networks import LeNet

BATCH = 64


def measure_ceiling(corpus: list[bytes], duration_s: float) -> float:
    """Images per second one process reaches through ``LeNet.classify_each``."""
    net = LeNet()
    net.initialize()
    batch = [corpus[i % len(corpus)] for i in range(BATCH)]
    net.classify_each(batch)  # warm-up: first calls allocate
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < duration_s:
        net.classify_each(batch)
        done += len(batch)
    return done / (time.perf_counter() - started)
