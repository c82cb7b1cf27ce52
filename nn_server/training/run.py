"""One complete training run: data → network → fit → evaluate → weights + record on disk.

The command-line entry point (``python -m nn_server.training``) and the server's background
trainer both call ``train_network``; only how they show progress differs. Everything about
the network — its model, data set, normalisation and recipe — comes from the registry.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mxnet as mx
import numpy as np

from nn_server.core.files import DATETIME_FORMAT, READABLE, weights_version
from nn_server.core.records import VersionRecord
from nn_server.networks import Network, Recipe, datasets, network_class
from nn_server.networks.export import export_onnx
from nn_server.networks.precision import measure
from nn_server.training.data import Batches
from nn_server.training.loop import EVAL_BATCH, ProgressCallback, evaluate, fit, seed_everything


@dataclass(frozen=True)
class TrainingJob:
    """Everything one run needs to know."""

    network: str = "lenet"
    out_dir: Path = Path(".")
    data_dir: Path | None = None
    """The data directory (``NN_DATA_DIR``); the network's data set is found under it."""
    recipe: Recipe | None = None
    """None: the network's own recipe."""
    train_subset: int | None = None
    """Train on the first N training images only (quick runs, tests)."""
    test_subset: int | None = None
    allow_download: bool = True
    command: str = "python -m nn_server.training.trainer (started by the server)"
    """How this run was started, recorded so that its weights can be reproduced."""

    def whole(self) -> TrainingJob:
        """This job on the whole training set."""
        return dataclasses.replace(self, train_subset=None)

    def resolved_recipe(self) -> Recipe:
        return self.recipe or network_class(self.network).recipe


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "mxnet": mx.__version__,
        "numpy": np.__version__,
    }


def load_split(
    cls: type[Network], split: str, job: TrainingJob,
    on_download: datasets.ProgressCallback | None = None,
) -> datasets.Split:
    data = datasets.load_split(cls.dataset, split, job.data_dir,
                               allow_download=job.allow_download, progress=on_download)
    return data.first(job.train_subset if split == "train" else job.test_subset)


def train_network(
    job: TrainingJob,
    on_progress: ProgressCallback | None = None,
    on_download: datasets.ProgressCallback | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> VersionRecord:
    """Run ``job`` and return its record; weights land in ``out_dir/<network>.params``.

    The weights and the JSON record are each replaced atomically, weights first, so a
    reader that sees the new record always finds the weights it describes.
    """
    stage = on_stage or (lambda _msg: None)
    cls = network_class(job.network)
    recipe = job.resolved_recipe()
    stage(f"loading {cls.dataset.title}")
    train = load_split(cls, "train", job, on_download)
    test = load_split(cls, "test", job, on_download)
    seed_everything(recipe.seed)
    device = cls(device=None).device
    block = cls.build()
    block.initialize(mx.init.Xavier(magnitude=2.0), ctx=device)
    block.hybridize(static_alloc=True)
    train_batches = Batches(train, recipe.batch_size, cls.normalize,
                            augmentation=recipe.augmentation, seed=recipe.seed)
    test_batches = Batches(test, EVAL_BATCH, cls.normalize, shuffle=False)
    stage(f"training on {len(train):,} {cls.dataset.title} images for {recipe.epochs} "
          f"epochs on {device}")
    result = fit(block, train_batches, test_batches, recipe, device, on_progress)

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
    stage("exporting to ONNX")
    export_onnx(cls, weights, weights.with_suffix(".onnx"))
    stage("measuring the export in float and int8 on the test set")
    # Calibrated on the whole training set, as for weights measured later (precision.py).
    measured = measure(cls, weights, test, load_split(cls, "train", job.whole()))
    record = VersionRecord(
        network=cls.name,
        accuracy=f"{result.test_accuracy * 100:.2f}",
        test_accuracy=result.test_accuracy,
        datetime=time.strftime(DATETIME_FORMAT),
        epochs=result.epochs,
        duration_s=round(result.duration_s, 1),
        dataset=cls.dataset.title,
        train_samples=len(train),
        test_samples=len(test),
        recipe=dataclasses.asdict(recipe),
        history=result.history,
        data_sha256=dict(cls.dataset.digests),
        versions=versions(),
        device=str(device),
        weights_version=weights_version(weights),
        command=job.command,
        accuracies=measured.accuracies,
        precision=measured.precision,
    )
    record.write(weights)
    return record


def score(cls: type[Network], weights: Path | None, test: datasets.Split) -> float:
    """Accuracy (0..1) of saved weights on ``test``, loaded as the server loads them."""
    net = cls()
    net.initialize(weights)
    assert net.block is not None
    return evaluate(net.block, Batches(test, EVAL_BATCH, cls.normalize, shuffle=False),
                    net.device)


def evaluate_weights(
    network: str, weights: Path | None, data_dir: Path | None, allow_download: bool = True
) -> float:
    """Test-set accuracy (0..1) of saved weights (default: the shipped ones)."""
    cls = network_class(network)
    test = datasets.load_split(cls.dataset, "test", data_dir, allow_download=allow_download)
    return score(cls, weights, test)
