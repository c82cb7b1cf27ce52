"""One complete training run: data → network → fit → evaluate → weights + record on disk.

The command-line entry point (``python -m nn_server.training``) and the server's background
trainer both call ``train_network``; only how they show progress differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np

from nn_server import mnist
from nn_server.networks import network_class
from nn_server.records import DATETIME_FORMAT, READABLE, weights_version, write_atomic
from nn_server.training.data import Batches
from nn_server.training.loop import (
    EVAL_BATCH,
    Hyperparameters,
    ProgressCallback,
    evaluate,
    fit,
    seed_everything,
)


@dataclass(frozen=True)
class TrainingJob:
    """Everything one run needs to know."""

    network: str = "lenet"
    out_dir: Path = Path(".")
    data_dir: Path | None = None
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    train_subset: int | None = None
    """Train on the first N training digits only (quick runs, tests)."""
    test_subset: int | None = None
    allow_download: bool = True
    command: str = "python -m nn_server.trainer (started by the server)"
    """How this run was started, recorded so that its weights can be reproduced."""


def subset(split: mnist.Split, n: int | None) -> mnist.Split:
    return split if n is None else mnist.Split(split.images[:n], split.labels[:n])


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "mxnet": mx.__version__,
        "numpy": np.__version__,
    }


def train_network(
    job: TrainingJob,
    on_progress: ProgressCallback | None = None,
    on_download: mnist.ProgressCallback | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``job`` and return its record; weights land in ``out_dir/<network>.params``.

    The weights and the JSON record are each replaced atomically, weights first, so a
    reader that sees the new record always finds the weights it describes.
    """
    stage = on_stage or (lambda _msg: None)
    cls = network_class(job.network)
    hp = job.hyperparameters
    stage("loading MNIST")
    train = subset(
        mnist.load_split("train", job.data_dir, allow_download=job.allow_download,
                         progress=on_download),
        job.train_subset,
    )
    test = subset(
        mnist.load_split("test", job.data_dir, allow_download=job.allow_download,
                         progress=on_download),
        job.test_subset,
    )
    seed_everything(hp.seed)
    device = cls(device=None).device
    block = cls.build()
    block.initialize(mx.init.Xavier(magnitude=2.0), ctx=device)
    block.hybridize(static_alloc=True)
    train_batches = Batches(train, hp.batch_size, cls.normalize, shift=hp.shift, seed=hp.seed)
    test_batches = Batches(test, EVAL_BATCH, cls.normalize, shuffle=False)
    stage(f"training on {len(train):,} digits for {hp.epochs} epochs on {device}")
    result = fit(block, train_batches, test_batches, hp, device, on_progress)

    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{cls.name}.params"
    # Gluon writes by file name, so save next to the target and move it into place.
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{cls.name}.", suffix=".params")
    os.fchmod(fd, READABLE)
    os.close(fd)
    try:
        block.save_parameters(tmp)
        os.replace(tmp, weights)
    finally:
        Path(tmp).unlink(missing_ok=True)
    record: dict[str, Any] = {
        "network": cls.name,
        "accuracy": f"{result.test_accuracy * 100:.2f}",
        "test_accuracy": result.test_accuracy,
        "datetime": time.strftime(DATETIME_FORMAT),
        "epochs": result.epochs,
        "duration_s": round(result.duration_s, 1),
        "train_samples": len(train),
        "test_samples": len(test),
        "hyperparameters": dataclasses.asdict(hp),
        "history": result.history,
        "data_sha256": {name: mnist.DIGESTS[name] for name in mnist.DIGESTS},
        "versions": versions(),
        "device": str(device),
        "weights_version": weights_version(weights),
        "command": job.command,
    }
    write_atomic(weights.with_suffix(".json"), json.dumps(record, indent=2).encode())
    return record


def evaluate_weights(
    network: str, weights: Path | None, data_dir: Path | None, allow_download: bool = True
) -> float:
    """Test-set accuracy (0..1) of saved weights, through the serving network's own loader."""
    cls = network_class(network)
    net = cls()
    net.initialize(weights)
    assert net.block is not None
    test = mnist.load_split("test", data_dir, allow_download=allow_download)
    return evaluate(net.block, Batches(test, EVAL_BATCH, cls.normalize, shuffle=False),
                    net.device)
